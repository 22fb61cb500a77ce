"""Generated protobuf and gRPC modules for accelplan.v1 (scripts/generate)."""
