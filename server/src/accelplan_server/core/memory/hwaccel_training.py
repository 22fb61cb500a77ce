"""Fine-tuning memory from a parameter count, with ai-hwaccel 1.2.0's multipliers.

base = parameter_count * 2 bytes (16-bit weights). Each component is
base * multiplier, rounded down; multipliers are exact decimals (Fractions)
so every language computing the same rule gets the same bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction as F

BASE_BYTES_PER_PARAMETER = 2


class TrainingMethod(enum.IntEnum):
    """Fine-tuning method. Values equal accelplan.v1.TrainingMethod's numbers."""

    FULL_FINE_TUNE = 1
    LORA = 2
    QLORA = 3
    PREFIX = 4
    DPO = 5
    RLHF = 6
    DISTILLATION = 7


class TrainingTarget(enum.IntEnum):
    """Device kind. Values equal accelplan.v1.TrainingTarget's numbers."""

    GPU = 1
    TPU = 2
    GAUDI = 3
    CPU = 4


Multipliers = tuple[F, F, F]
"""(model, optimizer, activation) multipliers of the base bytes."""

_GPU: dict[TrainingMethod, Multipliers] = {
    TrainingMethod.FULL_FINE_TUNE: (F(1), F(2), F(1)),
    TrainingMethod.LORA: (F(1), F("0.1"), F("0.1")),
    TrainingMethod.PREFIX: (F(1), F("0.05"), F("0.05")),
    TrainingMethod.DPO: (F(2), F(2), F("1.5")),
    TrainingMethod.RLHF: (F(2), F(2), F("1.5")),
    TrainingMethod.DISTILLATION: (F("1.5"), F(1), F("0.8")),
}
_TPU: dict[TrainingMethod, Multipliers] = {
    TrainingMethod.FULL_FINE_TUNE: (F(1), F("1.5"), F("0.8")),
    TrainingMethod.LORA: (F(1), F("0.15"), F("0.12")),
    TrainingMethod.PREFIX: (F(1), F("0.05"), F("0.05")),
    TrainingMethod.DPO: (F(2), F("1.5"), F("1.2")),
    TrainingMethod.RLHF: (F(2), F("1.5"), F("1.2")),
    TrainingMethod.DISTILLATION: (F("1.5"), F("0.8"), F("0.6")),
}
_GAUDI: dict[TrainingMethod, Multipliers] = {
    TrainingMethod.FULL_FINE_TUNE: (F(1), F("1.5"), F("0.9")),
    TrainingMethod.LORA: (F(1), F("0.12"), F("0.12")),
    TrainingMethod.PREFIX: (F(1), F("0.05"), F("0.06")),
    TrainingMethod.DPO: (F(2), F("1.5"), F("1.3")),
    TrainingMethod.RLHF: (F(2), F("1.5"), F("1.3")),
    TrainingMethod.DISTILLATION: (F("1.5"), F("0.9"), F("0.7")),
}

DEFAULT_QLORA_BITS = 4


def _qlora_multipliers(target: TrainingTarget, bits: int) -> Multipliers:
    low = bits <= 4
    if target is TrainingTarget.TPU:
        qf = F("0.4") if low else F("0.6")
        return (qf, F("0.15"), F("0.12") * qf)
    if target is TrainingTarget.GAUDI:
        qf = F("0.35") if low else F("0.55")
        return (qf, F("0.12"), F("0.12") * qf)
    return (F("0.25"), F("0.1"), F("0.025")) if low else (F("0.5"), F("0.1"), F("0.05"))


def multipliers(method: TrainingMethod, target: TrainingTarget, qlora_bits: int = DEFAULT_QLORA_BITS) -> Multipliers:
    """(model, optimizer, activation) multipliers for a method on a target."""
    if method is TrainingMethod.QLORA:
        return _qlora_multipliers(target, qlora_bits)
    table = {TrainingTarget.TPU: _TPU, TrainingTarget.GAUDI: _GAUDI}.get(target, _GPU)
    return table[method]


@dataclass(frozen=True)
class TrainingMemoryEstimate:
    """Bytes a fine-tuning job needs, by component."""

    method: TrainingMethod
    target: TrainingTarget
    model_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    assumptions: list[str]

    @property
    def total_bytes(self) -> int:
        """Sum of the components."""
        return self.model_bytes + self.optimizer_bytes + self.activation_bytes


def estimate_training_memory(
    parameter_count: int,
    method: TrainingMethod,
    target: TrainingTarget = TrainingTarget.GPU,
    qlora_bits: int = DEFAULT_QLORA_BITS,
) -> TrainingMemoryEstimate:
    """Component bytes = floor(parameter_count * 2 * multiplier)."""
    base = parameter_count * BASE_BYTES_PER_PARAMETER
    m, o, a = multipliers(method, target, qlora_bits)
    assumptions = [
        f"Base is {BASE_BYTES_PER_PARAMETER} bytes per parameter (16-bit weights).",
        f"ai-hwaccel 1.2.0 multipliers for {method.name} on {target.name}: "
        f"model {float(m):g}x, optimizer {float(o):g}x, activations {float(a):g}x of the base.",
        "Batch size, sequence length and optimizer choice are not modelled.",
    ]
    if method is TrainingMethod.QLORA:
        assumptions.append(f"QLoRA base weights quantized to {qlora_bits} bits.")
    return TrainingMemoryEstimate(method, target, int(base * m), int(base * o), int(base * a), assumptions)
