"""Quantization levels (ai-hwaccel's QuantizationLevel): bit widths, names, resolution."""

from __future__ import annotations

import enum

from accelplan_server.core.errors import invalid, shown


class Quantization(enum.IntEnum):
    """Weight precision. Values equal accelplan.v1.QuantizationLevel's numbers."""

    NONE = 1
    FLOAT16 = 2
    BFLOAT16 = 3
    INT8 = 4
    INT4 = 5
    FP8 = 6

    @property
    def bits(self) -> int:
        """Bits stored per parameter."""
        return _BITS[self]

    @property
    def display_name(self) -> str:
        """FP32, FP16, BF16, INT8 or INT4."""
        return _DISPLAY[self]

    @property
    def memory_reduction_factor(self) -> float:
        """Memory saved relative to FP32: 32 / bits."""
        return 32 / self.bits


_BITS = {
    Quantization.NONE: 32,
    Quantization.FLOAT16: 16,
    Quantization.BFLOAT16: 16,
    Quantization.INT8: 8,
    Quantization.INT4: 4,
    Quantization.FP8: 8,
}
_DISPLAY = {
    Quantization.NONE: "FP32",
    Quantization.FLOAT16: "FP16",
    Quantization.BFLOAT16: "BF16",
    Quantization.INT8: "INT8",
    Quantization.INT4: "INT4",
    Quantization.FP8: "FP8",
}
_FROM_BITS = {
    32: Quantization.NONE,
    16: Quantization.FLOAT16,
    8: Quantization.INT8,
    4: Quantization.INT4,
}
_FROM_NAME: dict[str, Quantization] = {}
for _q in Quantization:
    for _alias in (_q.name, _q.display_name, f"QUANTIZATION_LEVEL_{_q.name}"):
        _FROM_NAME[_alias.lower()] = _q
_FROM_NAME.update(
    {
        "fp32": Quantization.NONE,
        "float32": Quantization.NONE,
        "f32": Quantization.NONE,
        "f16": Quantization.FLOAT16,
        "bfloat16": Quantization.BFLOAT16,
    }
)

MAX_NAME_LENGTH = 64


def from_bits(bits: int, field: str = "bits") -> Quantization:
    """The level for a bit width: 32 -> NONE, 16 -> FLOAT16, 8 -> INT8, 4 -> INT4."""
    try:
        return _FROM_BITS[bits]
    except KeyError:
        raise invalid(field, f"no quantization level has {bits} bits per parameter; use 32, 16, 8 or 4") from None


def from_name(name: str, field: str = "name") -> Quantization:
    """The level for a case-insensitive name such as ``bf16``, ``INT4`` or ``QUANTIZATION_LEVEL_NONE``."""
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(field, f"name is longer than {MAX_NAME_LENGTH} characters")
    try:
        return _FROM_NAME[name.strip().lower()]
    except KeyError:
        known = ", ".join(q.display_name.lower() for q in Quantization)
        raise invalid(field, f"unknown quantization name {shown(name)}; known: {known}") from None
