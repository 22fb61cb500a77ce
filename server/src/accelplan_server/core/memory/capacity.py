"""Capacity on a concrete set of tensor-parallel devices (the smallest one sets the budget)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accelplan_server.core.hardware.accelerators import Accelerator
from accelplan_server.core.memory.serving import Capacity, ServingShape, estimate_capacity
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat


@dataclass(frozen=True)
class CapacityAnswer:
    """A capacity and the sentences that explain it."""

    capacity: Capacity
    assumptions: tuple[str, ...]


def capacity_for(
    arch: Architecture,
    fmt: WeightFormat,
    shape: ServingShape,
    devices: Sequence[Accelerator],
    memory_utilization: float,
) -> CapacityAnswer:
    """Capacity of ``arch`` split over ``devices`` (len(devices) == shape.tensor_parallel)."""
    smallest = min(d.memory_bytes for d in devices)
    cap = estimate_capacity(arch, fmt, shape, smallest, memory_utilization)
    notes = [
        f"Each of {len(devices)} device(s) offers {memory_utilization:g} x {smallest} bytes (the smallest device).",
        "KV budget = usable memory - weights - activations - runtime overhead, per device.",
        f"Longest context is capped at the model's {arch.max_position_embeddings or 'unstated'} positions.",
        *cap.memory.assumptions,
    ]
    return CapacityAnswer(cap, tuple(notes))
