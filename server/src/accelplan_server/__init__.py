"""accelplan server: the planning core (``accelplan_server.core``) and its gRPC transport."""

__version__ = "0.1.0"
