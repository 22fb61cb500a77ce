"""Quantization suggestion for a fleet (ai-hwaccel 1.2.0's rule, plus opt-in sharding).

Families are tried in order, each with its own precisions, and the first level
whose estimate fits the family's largest available device wins:
TPU (BF16, INT8), Gaudi (BF16, INT8), GPU (FP16, INT8, INT4), NPU (INT8, INT4),
then the CPU (FP16, INT8, INT4; 16 GiB when the fleet lists none), and INT4
when nothing fits. With ``consider_sharding`` a level also fits a family when
all of the family's available devices together hold it, and the sharding plan
for those devices is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from accelplan_server.core.hardware.accelerators import Accelerator, AcceleratorType, Family, Fleet
from accelplan_server.core.model.footprint import Footprint
from accelplan_server.core.planning.sharding import FALLBACK_CPU_MEMORY_BYTES, Plan, SpeedModel, plan_sharding
from accelplan_server.core.quantization import Quantization as Q

FootprintFor = Callable[[Q], Footprint]
"""The model's footprint at a level."""
SpeedFor = Callable[[Q, Fleet], SpeedModel]
"""The speed model for the model at a level on a fleet."""


@dataclass(frozen=True)
class _Candidate:
    label: str
    family: Family
    levels: tuple[Q, ...]
    member: Callable[[Accelerator], bool]
    shardable: bool


_ORDER = (
    _Candidate("TPU", Family.TPU, (Q.BFLOAT16, Q.INT8), lambda a: a.type is AcceleratorType.TPU, True),
    _Candidate("Gaudi", Family.AI_ASIC, (Q.BFLOAT16, Q.INT8), lambda a: a.type is AcceleratorType.GAUDI, True),
    _Candidate("GPU", Family.GPU, (Q.FLOAT16, Q.INT8, Q.INT4), lambda a: a.family is Family.GPU, True),
    _Candidate("NPU", Family.NPU, (Q.INT8, Q.INT4), lambda a: a.family is Family.NPU, False),
)
_CPU_LEVELS = (Q.FLOAT16, Q.INT8, Q.INT4)


@dataclass(frozen=True)
class Suggestion:
    """The suggested precision, the memory picture behind it, and any sharded plan assumed."""

    quantization: Q
    reason: str
    family: Family
    required_memory_bytes: int
    available_memory_bytes: int
    fits: bool
    plan: Plan | None = None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def suggest_quantization(
    need_for: FootprintFor, fleet: Fleet, speed_for: SpeedFor, *, consider_sharding: bool = False
) -> Suggestion:
    """The widest precision that fits, following ai-hwaccel's family order."""
    available = [a for _, a in fleet.available()]
    for cand in _ORDER:
        members = [a for a in available if cand.member(a)]
        largest = max((a.memory_bytes for a in members), default=0)
        if largest == 0:
            continue
        together = sum(a.memory_bytes for a in members)
        for level in cand.levels:
            need = need_for(level).total_bytes
            if need <= largest:
                return Suggestion(
                    level,
                    f"{level.display_name} needs {_gib(need)}, which fits the largest available "
                    f"{cand.label} ({_gib(largest)}).",
                    cand.family,
                    need,
                    largest,
                    True,
                )
            if consider_sharding and cand.shardable and len(members) > 1 and need <= together:
                # Devices outside the family stay in place, marked unavailable, so
                # the plan's fleet indices are the caller's.
                subset = Fleet(
                    tuple(a if cand.member(a) else replace(a, available=False) for a in fleet.accelerators),
                    fleet.interconnects,
                )
                plan = plan_sharding(need_for(level), subset, speed_for(level, subset))
                return Suggestion(
                    level,
                    f"{level.display_name} needs {_gib(need)}, which the {len(members)} available "
                    f"{cand.label} devices hold together ({_gib(together)}) when sharded.",
                    cand.family,
                    need,
                    together,
                    True,
                    plan,
                )
    cpu = max((a.memory_bytes for a in available if a.type is AcceleratorType.CPU), default=0)
    listed = cpu > 0
    cpu = cpu or FALLBACK_CPU_MEMORY_BYTES
    where = "the CPU" if listed else "an assumed 16 GiB CPU (the fleet lists none)"
    for level in _CPU_LEVELS:
        need = need_for(level).total_bytes
        if need <= cpu:
            return Suggestion(
                level,
                f"No accelerator holds the model; {level.display_name} needs "
                f"{_gib(need)}, which fits {where} ({_gib(cpu)}).",
                Family.CPU,
                need,
                cpu,
                True,
            )
    need = need_for(Q.INT4).total_bytes
    return Suggestion(
        Q.INT4,
        f"Nothing holds the model even at INT4 ({_gib(need)}); INT4 is the smallest "
        f"footprint ({where} has {_gib(cpu)}).",
        Family.CPU,
        need,
        cpu,
        False,
    )
