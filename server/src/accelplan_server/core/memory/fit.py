"""Whether a serving footprint fits the devices an answer uses, and the notes that say so."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.footprint import Footprint

GIB = 2**30


class Fit(NamedTuple):
    """Memory per device against the smallest device used."""

    memory_per_device_bytes: int
    device_memory_bytes: int

    @property
    def fits(self) -> bool:
        """The need is at most the smallest device's memory."""
        return self.memory_per_device_bytes <= self.device_memory_bytes


def per_device_bytes(need: Footprint, pipeline_parallel: int) -> int:
    """Bytes on each device when ``need`` (already per device under tensor parallelism) is split into stages.

    Weights and KV cache divide over the stages; activations and the runtime reserve are per device.
    A bare parameter count's flat 20% divides with the weights.
    """
    p = max(1, pipeline_parallel)
    if not need.architecture_known:
        return -(-need.total_bytes // p)
    return -(-(need.weights_bytes + need.kv_cache_bytes) // p) + need.activation_bytes + need.overhead_bytes


def fit_of(need: Footprint, pipeline_parallel: int, device_memory: Sequence[int]) -> Fit:
    """The fit of ``need`` on devices of the given memory sizes (the smallest decides)."""
    return Fit(per_device_bytes(need, pipeline_parallel), min(device_memory, default=0))


def no_fit_note(fit: Fit, what: str) -> str:
    """The assumption line for an answer computed although the model does not fit."""
    return (
        f"Does not fit: {what} needs {fit.memory_per_device_bytes / GIB:.1f} GiB per device, the smallest device "
        f"used has {fit.device_memory_bytes / GIB:.1f} GiB; the speed is what it would be if it fitted "
        "(use more devices, a narrower precision or a shorter context)."
    )


def context_note(arch: Architecture | None, tokens: int, field: str) -> str | None:
    """An assumption line when ``tokens`` exceeds the model's max_position_embeddings, else None."""
    if arch is None or not arch.max_position_embeddings or tokens <= arch.max_position_embeddings:
        return None
    return (
        f"{field} = {tokens} exceeds the model's max_position_embeddings ({arch.max_position_embeddings}); "
        "memory and speed are extrapolated, but the model was not trained for it and engines refuse it "
        "without RoPE scaling."
    )
