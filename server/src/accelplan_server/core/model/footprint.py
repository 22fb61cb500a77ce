"""One model's memory footprint at a precision, whatever is known about it.

A model is a bare parameter count (ai-hwaccel's rules: weights + a flat 20%)
or a known architecture (weights with quantization overhead + KV cache +
activations + runtime overhead; see serving_memory). Everything that sizes a
model for serving (EstimateMemory, plans, suggestions, recommendations) goes
through ``footprint``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from accelplan_server.core.memory.hwaccel_serving import estimate_memory
from accelplan_server.core.memory.serving import ServingShape, estimate_serving_memory
from accelplan_server.core.model.architecture import Architecture, ParameterCounts
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.quantization import Quantization

PARAMETERS_PER_LAYER = 250_000_000
"""ai-hwaccel's layer estimate for a bare parameter count: one layer per 250M parameters."""


class ModelProfile(NamedTuple):
    """What is known about a model: its parameter counts and, if known, its architecture."""

    parameter_count: int
    active_parameter_count: int
    architecture: Architecture | None = None
    name: str = ""

    @classmethod
    def from_count(cls, parameter_count: int) -> ModelProfile:
        """A model known only by its parameter count."""
        return cls(parameter_count, parameter_count)

    @classmethod
    def from_architecture(cls, arch: Architecture, name: str = "") -> ModelProfile:
        """A model with an architecture; counts come from it."""
        return cls(arch.parameters.total, arch.parameters.active, arch, name)

    @property
    def counts(self) -> ParameterCounts:
        """Counts by role; a bare count is treated as all linear-layer weights."""
        if self.architecture is not None:
            return self.architecture.parameters
        return ParameterCounts(0, 0, 0, self.parameter_count, 0, 0, 0, 0, 0)

    @property
    def layer_count(self) -> int:
        """Transformer layers: the architecture's, or parameter_count / 250M (at least 1)."""
        if self.architecture is not None:
            return self.architecture.num_hidden_layers
        return max(self.parameter_count // PARAMETERS_PER_LAYER, 1)


class Footprint(NamedTuple):
    """Bytes by part (per device under tensor parallelism)."""

    profile: ModelProfile
    weight_format: WeightFormat
    shape: ServingShape
    weights_bytes: int
    kv_cache_bytes: int
    kv_cache_bytes_per_token: int
    activation_bytes: int
    overhead_bytes: int
    assumptions: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        """Sum of the parts."""
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes + self.overhead_bytes

    @property
    def architecture_known(self) -> bool:
        """Whether the architecture-aware model was used."""
        return self.profile.architecture is not None


DEFAULT_SHAPE = ServingShape()


@functools.lru_cache(maxsize=256)
def _count_only_notes(q: Quantization, tensor_parallel: int) -> tuple[str, ...]:
    notes = [
        *estimate_memory(0, q).assumptions,
        "Architecture unknown (bare parameter count): context length, batch size and KV-cache "
        "precision do not change the estimate.",
    ]
    if tensor_parallel > 1:
        notes.append(f"Split evenly over {tensor_parallel} devices.")
    return tuple(notes)


def footprint(profile: ModelProfile, fmt: WeightFormat, shape: ServingShape = DEFAULT_SHAPE) -> Footprint:
    """Memory to serve ``profile`` stored as ``fmt`` for ``shape`` (per device)."""
    if profile.architecture is None:
        e = estimate_memory(profile.parameter_count, fmt.quantization)
        t = max(1, shape.tensor_parallel)
        notes = _count_only_notes(fmt.quantization, t)
        return Footprint(profile, fmt, shape, -(-e.weights_bytes // t), 0, 0, 0, -(-e.overhead_bytes // t), notes)
    m = estimate_serving_memory(profile.architecture, fmt, shape)
    return Footprint(
        profile,
        fmt,
        shape,
        m.weights_bytes,
        m.kv_cache_bytes,
        m.kv_cache_bytes_per_token,
        m.activation_bytes,
        m.overhead_bytes,
        m.assumptions,
    )
