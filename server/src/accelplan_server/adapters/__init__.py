"""Adapters for schedulers (Kubernetes extender): they call the core or the gRPC API, never the reverse."""
