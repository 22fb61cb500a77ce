"""Detecting the local machine's accelerators, memory and links as an accelplan.v1.Fleet.

Client side only: nothing in the server imports this package.
"""

from accelplan.detect.runner import BACKENDS, DEFAULT_TIMEOUT_S, Detection, detect

__all__ = ["BACKENDS", "DEFAULT_TIMEOUT_S", "Detection", "detect"]
