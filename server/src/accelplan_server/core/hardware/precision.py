"""Whether the devices an answer uses can run the weights' precision.

The rule every speed or capacity answer applies (PlanSharding, EstimatePerformance,
EstimateCapacity): a device whose supported levels (its sku's catalogue row, else
ai-hwaccel's per-kind table) lack the precision refuses the request with
FAILED_PRECONDITION naming the device and what it does support. The one exception
is FP8 on a GPU given without a sku: whether it has FP8 units is unknown, so the
answer goes ahead with an assumption line saying so.
"""

from __future__ import annotations

from collections.abc import Iterable

from accelplan_server.core.errors import FailedPrecondition, Precondition
from accelplan_server.core.hardware.accelerators import Accelerator, Family
from accelplan_server.core.quantization import Quantization as Q

MAX_NAMED_DEVICES = 8
"""Devices a refusal names at most (a large fleet of one kind would repeat one line)."""


def levels_text(levels: Iterable[Q]) -> str:
    """``FP32, FP16, BF16`` for a sequence of levels."""
    return ", ".join(q.display_name for q in levels)


def _label(index: int, device: Accelerator) -> tuple[str, str]:
    subject = f"fleet.accelerators[{index}]" if index >= 0 else "host CPU (not in the fleet)"
    what = f"sku {device.sku!r}" if device.sku else f"{device.type.name} device"
    return subject, what


def check_precision(devices: Iterable[tuple[int, Accelerator]], quantization: Q) -> tuple[str, ...]:
    """Assumption lines for devices whose support is unknown; FailedPrecondition if one lacks the level.

    ``devices`` are (fleet index, device) pairs; index -1 is a device the fleet does not list.
    """
    notes: list[str] = []
    bad: list[Precondition] = []
    seen: set[int] = set()
    for index, device in devices:
        if index in seen and index >= 0:
            continue
        seen.add(index)
        if device.supports(quantization):
            continue
        subject, what = _label(index, device)
        if quantization is Q.FP8 and not device.sku and device.family is Family.GPU:
            notes.append(
                f"{subject} has no sku, so whether it has FP8 units was not checked; FP8 is assumed to run "
                "(name its sku to check)."
            )
            continue
        bad.append(
            Precondition(
                "PRECISION",
                subject,
                f"{what} cannot run {quantization.display_name}; it supports "
                f"{levels_text(device.supported_quantizations)}",
            )
        )
        if len(bad) == MAX_NAMED_DEVICES:
            break
    if bad:
        raise FailedPrecondition(bad)
    return tuple(notes)
