"""Inference memory from a parameter count, as ai-hwaccel 1.2.0 computes it."""

from __future__ import annotations

import functools
from typing import NamedTuple

from accelplan_server.core.quantization import Quantization

OVERHEAD_DIVISOR = 5
"""Activations and KV cache are folded into a flat weights/5 (20%) overhead, as in ai-hwaccel."""


class MemoryEstimate(NamedTuple):
    """Bytes a model needs to serve at one precision."""

    parameter_count: int
    quantization: Quantization
    weights_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        """Weights plus overhead."""
        return self.weights_bytes + self.overhead_bytes

    @property
    def assumptions(self) -> tuple[str, ...]:
        """The estimate's assumptions, one sentence each."""
        return _assumptions(self.quantization)


@functools.cache
def _assumptions(q: Quantization) -> tuple[str, ...]:
    return (
        f"Weights take {q.bits} bits per parameter ({q.display_name}): parameter_count * {q.bits} / 8 bytes.",
        "Activations and KV cache are a flat 20% of the weights (ai-hwaccel 1.2.0's rule); "
        "context length and batch size are not modelled.",
    )


def estimate_memory(parameter_count: int, quantization: Quantization) -> MemoryEstimate:
    """Weights = params * bits / 8 (floor); overhead = weights / 5 (floor)."""
    weights = parameter_count * quantization.bits // 8
    return MemoryEstimate(parameter_count, quantization, weights, weights // OVERHEAD_DIVISOR)
