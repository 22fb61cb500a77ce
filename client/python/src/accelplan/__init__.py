"""accelplan: Python client for the accelplan hardware-planning service.

``accelplan.v1`` holds the generated protobuf and gRPC modules;
``accelplan.client.PlannerClient`` is a small typed client over them.
"""

from accelplan.client import FieldViolation, PlannerClient, PlannerError, PreparedNodes, node_verdicts, prepare_nodes

__all__ = ["FieldViolation", "PlannerClient", "PlannerError", "PreparedNodes", "node_verdicts", "prepare_nodes"]
__version__ = "0.1.0"
