"""The gRPC surface: servicers, request conversion, response messages, status mapping, limits, paging."""
