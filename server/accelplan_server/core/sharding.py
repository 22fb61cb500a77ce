"""Sharding plans: where each part of a model runs (ai-hwaccel 1.2.0's planner).

Order of decisions:
1. The model fits on the highest-ranked available device -> NONE, one shard.
   Ties in rank go to the later device in the fleet, as in ai-hwaccel.
2. The available TPUs together hold it -> TENSOR_PARALLEL over all their chips.
3. All available GPUs, AI ASICs and TPUs together hold it -> TENSOR_PARALLEL when
   NVSwitch is present, or when the fast-link bandwidth exceeds 100 GB/s with at
   most 8 devices; else PIPELINE_PARALLEL with stages ordered by NUMA node.
4. Otherwise one shard on the CPU.

Memory per shard is the model's footprint split evenly. Decode speed comes
from a caller-supplied speed model (the roofline in performance.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from accelplan_server.core.footprint import Footprint
from accelplan_server.core.hardware import Accelerator, AcceleratorType, Family, Fleet, InterconnectKind

TENSOR_PARALLEL_BANDWIDTH_GBPS = 100.0
"""Fast-link bandwidth above which up to MAX_TENSOR_PARALLEL_DEVICES use tensor parallelism."""
MAX_TENSOR_PARALLEL_DEVICES = 8
FALLBACK_CPU_MEMORY_BYTES = 16 * 2**30
"""Memory assumed for a CPU that the fleet does not list (ai-hwaccel's 16 GiB)."""


class Strategy(enum.IntEnum):
    """How a model is split (accelplan.v1.ShardingStrategy)."""

    NONE = 1
    PIPELINE_PARALLEL = 2
    TENSOR_PARALLEL = 3
    DATA_PARALLEL = 4


class Shard(NamedTuple):
    """The part of the model one device holds (a tuple: plans can have thousands)."""

    shard_id: int
    first_layer: int
    last_layer: int
    memory_bytes: int
    device: Accelerator
    device_index: int
    """Position in the fleet; -1 for a CPU the fleet does not list."""
    layer_fraction: float
    """Share of the weights this shard reads per token."""


SpeedModel = Callable[[Strategy, Sequence[Shard]], tuple[float | None, list[str]]]
"""(strategy, shards) -> (batch-1 decode tokens/s or None, assumptions)."""


@dataclass(frozen=True)
class Plan:
    """A sharding plan and its speed estimate."""

    strategy: Strategy
    device_count: int
    shards: tuple[Shard, ...]
    total_memory_bytes: int
    layer_count: int
    tokens_per_second: float | None
    assumptions: tuple[str, ...] = field(default=())

    @property
    def fits_in_memory(self) -> bool:
        """Every shard fits its device."""
        return all(s.memory_bytes <= s.device.memory_bytes for s in self.shards)


def best_device(devices: list[tuple[int, Accelerator]]) -> tuple[int, Accelerator] | None:
    """Highest rank; the later device wins a tie (ai-hwaccel's max_by_key)."""
    best: tuple[int, Accelerator] | None = None
    best_rank = -1
    for item in devices:
        rank = item[1].rank
        if rank >= best_rank:
            best, best_rank = item, rank
    return best


_LINK_GROUP = {
    InterconnectKind.NVLINK: 0,
    InterconnectKind.NVSWITCH: 0,
    InterconnectKind.XGMI_INFINITY_FABRIC: 1,
    InterconnectKind.INFINIBAND: 2,
    InterconnectKind.ROCE: 2,
    InterconnectKind.ROCE_V2: 2,
    InterconnectKind.ICI: 3,
}


def fast_link_bandwidth_gbps(fleet: Fleet) -> tuple[float, bool]:
    """(sum over link groups of each group's best bandwidth, NVSwitch present).

    Groups: NVLink/NVSwitch, XGMI, InfiniBand/RoCE/RoCEv2, ICI.
    """
    best = [0.0, 0.0, 0.0, 0.0]
    nvswitch = False
    for link in fleet.interconnects:
        g = _LINK_GROUP.get(link.kind)
        if g is None:
            continue
        best[g] = max(best[g], link.bandwidth_gbps)
        nvswitch = nvswitch or link.kind is InterconnectKind.NVSWITCH
    return sum(best), nvswitch


def device_link_bandwidth_gbps(fleet: Fleet) -> float:
    """Best device-to-device link (NVLink/NVSwitch, XGMI, ICI) for tensor-parallel traffic; 0 if none."""
    return max(
        (link.bandwidth_gbps for link in fleet.interconnects if _LINK_GROUP.get(link.kind) in (0, 1, 3)), default=0.0
    )


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pipeline_ranges(layers: int, stages: int) -> list[tuple[int, int]]:
    """Contiguous inclusive layer ranges: ceil(layers/stages) each, the last takes the rest.

    Unlike ai-hwaccel, stages that would get no layer of their own are dropped
    rather than repeating the final layer.
    """
    per_stage = max(_ceil_div(layers, stages), 1)
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < layers and len(ranges) < stages:
        end = layers - 1 if len(ranges) == stages - 1 else min(start + per_stage - 1, layers - 1)
        ranges.append((start, end))
        start = end + 1
    return ranges


def _even_shards(devices: list[tuple[int, Accelerator]], needed: int, layers: int) -> list[Shard]:
    per = _ceil_div(needed, len(devices))
    fraction = 1 / len(devices)
    new = tuple.__new__  # Shard's own __new__ is a Python function; plans can have thousands of shards
    return [new(Shard, (i, 0, layers - 1, per, d, idx, fraction)) for i, (idx, d) in enumerate(devices)]


def chip_view(device: Accelerator) -> Accelerator:
    """One chip of a multi-chip TPU device: its memory, bandwidth and peak divided by the chip count."""
    chips = device.chips
    if chips == 1:
        return device
    return replace(
        device,
        memory_bytes=device.memory_bytes // chips,
        tpu_chip_count=1,
        memory_bandwidth_gbps=device.memory_bandwidth_gbps / chips,
        peak_dense_tflops_16bit=device.peak_dense_tflops_16bit / chips,
    )


def plan_sharding(need: Footprint, fleet: Fleet, speed: SpeedModel) -> Plan:
    """Place a model with footprint ``need`` on ``fleet``; the fleet must have an available device."""
    needed = need.total_bytes
    layers = need.profile.layer_count
    available = fleet.available()
    what = (
        "weights + KV cache + activations + runtime overhead"
        if need.architecture_known
        else "weights + 20%, ai-hwaccel's rule"
    )
    layer_note = "from the architecture" if need.architecture_known else "as parameter_count / 250M"
    notes = [f"Memory: {needed} bytes ({what}).", f"{layers} layers ({layer_note})."]
    best = best_device(available)
    if best is None:
        raise ValueError("fleet has no available device")

    def finish(strategy: Strategy, shards: list[Shard], extra: list[str]) -> Plan:
        tps, speed_notes = speed(strategy, shards)
        return Plan(strategy, len(shards), tuple(shards), needed, layers, tps, tuple(notes + extra + speed_notes))

    idx, device = best
    if needed <= device.memory_bytes:
        shard = Shard(0, 0, layers - 1, needed, device, idx, 1.0)
        return finish(Strategy.NONE, [shard], [f"Fits on the highest-ranked device (fleet index {idx})."])

    tpus = [(i, a) for i, a in available if a.type is AcceleratorType.TPU]
    if tpus and sum(a.memory_bytes for _, a in tpus) >= needed:
        chips = [(i, chip_view(a)) for i, a in tpus for _ in range(a.chips)]
        per_chip = _ceil_div(needed, len(chips))
        shards = [Shard(n, 0, layers - 1, per_chip, a, i, 1 / len(chips)) for n, (i, a) in enumerate(chips)]
        return finish(Strategy.TENSOR_PARALLEL, shards, [f"Tensor parallel over {len(chips)} TPU chips."])

    pool = [(i, a) for i, a in available if a.family in (Family.GPU, Family.AI_ASIC, Family.TPU)]
    if pool and sum(a.memory_bytes for _, a in pool) >= needed:
        bandwidth, nvswitch = fast_link_bandwidth_gbps(fleet)
        if nvswitch or (bandwidth > TENSOR_PARALLEL_BANDWIDTH_GBPS and len(pool) <= MAX_TENSOR_PARALLEL_DEVICES):
            why = "NVSwitch present" if nvswitch else f"fast links total {bandwidth:g} GB/s over {len(pool)} devices"
            return finish(
                Strategy.TENSOR_PARALLEL,
                _even_shards(pool, needed, layers),
                [f"Tensor parallel over {len(pool)} devices ({why})."],
            )
        ordered = sorted(pool, key=lambda item: (item[1].numa_node is None, item[1].numa_node or 0))
        ranges = pipeline_ranges(layers, len(ordered))
        per = _ceil_div(needed, len(ranges))
        shards = [
            Shard(n, lo, hi, per, ordered[n][1], ordered[n][0], (hi - lo + 1) / layers)
            for n, (lo, hi) in enumerate(ranges)
        ]
        why = f"fast links total {bandwidth:g} GB/s, no NVSwitch"
        return finish(
            Strategy.PIPELINE_PARALLEL,
            shards,
            [f"Pipeline parallel over {len(shards)} stages ordered by NUMA node ({why})."],
        )

    cpus = [(i, a) for i, a in available if a.type is AcceleratorType.CPU]
    if cpus:
        i, cpu = max(cpus, key=lambda item: item[1].memory_bytes)
        note = f"Nothing else holds the model; runs on the CPU at fleet index {i}."
    else:
        i, cpu = -1, Accelerator(AcceleratorType.CPU, FALLBACK_CPU_MEMORY_BYTES, name="host CPU (not in fleet)")
        note = (
            "Nothing in the fleet holds the model; falls back to a host CPU the fleet does not list (16 GiB assumed)."
        )
    return finish(Strategy.NONE, [Shard(0, 0, layers - 1, needed, cpu, i, 1.0)], [note])
