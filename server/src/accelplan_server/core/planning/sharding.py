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
from functools import cached_property, partial
from typing import NamedTuple

from accelplan_server.core.hardware.accelerators import Accelerator, AcceleratorType, Family, Fleet, InterconnectKind
from accelplan_server.core.memo import Memoizing
from accelplan_server.core.model.footprint import Footprint

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
    """The part of the model one device holds."""

    shard_id: int
    first_layer: int
    last_layer: int
    memory_bytes: int
    device: Accelerator
    device_index: int
    """Position in the fleet; -1 for a CPU the fleet does not list."""
    layer_fraction: float
    """Share of the weights this shard reads per token."""


class Layout(NamedTuple):
    """The layers a shard holds and the memory it needs."""

    first_layer: int
    last_layer: int
    memory_bytes: int
    layer_fraction: float
    """Share of the weights the shard reads per token."""


@dataclass(frozen=True, eq=False)
class Lineup(Memoizing):
    """The devices a plan's shards run on, in shard order: shard n runs on device n.

    A fleet has a few lineups (its best device, its pool, its TPU chips, its
    NUMA order), built once per fleet; every plan on that fleet reuses them, so
    facts about their devices (specs, encoded messages) are kept with ``memo``
    and a plan over 1,000 devices does no per-device work of its own.
    """

    devices: tuple[Accelerator, ...]
    indices: tuple[int, ...]
    """Each device's position in the fleet; -1 for a CPU the fleet does not list."""

    @staticmethod
    def of(placed: Sequence[tuple[int, Accelerator]]) -> Lineup:
        """The lineup of (fleet index, device) pairs, in order."""
        return Lineup(tuple(a for _, a in placed), tuple(i for i, _ in placed))

    def __len__(self) -> int:
        return len(self.devices)


def each_layout(layouts: Sequence[Layout], shards: int) -> Sequence[Layout]:
    """One layout per shard, from a plan's layouts (one per shard, or one that every shard has)."""
    return list(layouts) * shards if len(layouts) == 1 else layouts


SpeedModel = Callable[[Strategy, Lineup, Sequence[Layout]], tuple[float | None, list[str]]]
"""(strategy, lineup, one layout per shard) -> (batch-1 decode tokens/s or None, assumptions)."""


@dataclass(frozen=True)
class Plan:
    """A sharding plan and its speed estimate."""

    strategy: Strategy
    lineup: Lineup
    layouts: tuple[Layout, ...]
    """One per shard, or a single layout that every shard has (even splits)."""
    total_memory_bytes: int
    layer_count: int
    tokens_per_second: float | None
    fits_in_memory: bool
    """Every shard fits its device."""
    assumptions: tuple[str, ...] = field(default=())

    @property
    def device_count(self) -> int:
        """Shards: devices, pipeline stages or TPU chips."""
        return len(self.lineup)

    @cached_property
    def shards(self) -> tuple[Shard, ...]:
        """Every shard, spelled out."""
        lineup = self.lineup
        return tuple(
            Shard(n, lay.first_layer, lay.last_layer, lay.memory_bytes, device, index, lay.layer_fraction)
            for n, (device, index, lay) in enumerate(
                zip(lineup.devices, lineup.indices, each_layout(self.layouts, len(lineup)), strict=True)
            )
        )


def best_device(devices: Sequence[tuple[int, Accelerator]]) -> tuple[int, Accelerator] | None:
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


@dataclass(frozen=True)
class _Candidates:
    """What the planner's decisions need of one fleet; depends only on the fleet, so computed once per fleet."""

    best: Lineup | None
    """The highest-ranked available device alone."""
    tpu_memory_bytes: int
    tpu_chips: Lineup
    """Every chip of the available TPUs, as chip views."""
    tpu_chip_min_memory_bytes: int
    pool: Lineup
    """Available GPUs, AI ASICs and TPUs, in fleet order."""
    pool_memory_bytes: int
    pool_min_memory_bytes: int
    """The smallest pool device: an even split fits when its share fits there."""
    by_numa: tuple[tuple[int, Accelerator], ...]
    """The pool ordered by NUMA node (unknown last; stable)."""
    link_bandwidth_gbps: float
    nvswitch: bool
    largest_cpu: Lineup | None

    @staticmethod
    def of(fleet: Fleet) -> _Candidates:
        available = fleet.available()
        best = best_device(available)
        tpus = [(i, a) for i, a in available if a.type is AcceleratorType.TPU]
        chips = [(i, chip_view(a)) for i, a in tpus for _ in range(a.chips)]
        pool = [(i, a) for i, a in available if a.family in (Family.GPU, Family.AI_ASIC, Family.TPU)]
        cpus = [(i, a) for i, a in available if a.type is AcceleratorType.CPU]
        bandwidth, nvswitch = fast_link_bandwidth_gbps(fleet)
        return _Candidates(
            best=Lineup.of([best]) if best else None,
            tpu_memory_bytes=sum(a.memory_bytes for _, a in tpus),
            tpu_chips=Lineup.of(chips),
            tpu_chip_min_memory_bytes=_min_memory_bytes(chips),
            pool=Lineup.of(pool),
            pool_memory_bytes=sum(a.memory_bytes for _, a in pool),
            pool_min_memory_bytes=_min_memory_bytes(pool),
            by_numa=tuple(sorted(pool, key=lambda item: (item[1].numa_node is None, item[1].numa_node or 0))),
            link_bandwidth_gbps=bandwidth,
            nvswitch=nvswitch,
            largest_cpu=Lineup.of([max(cpus, key=lambda item: item[1].memory_bytes)]) if cpus else None,
        )

    def numa_stages(self, fleet: Fleet, stages: int) -> Lineup:
        """The first ``stages`` devices in NUMA order (kept with the fleet)."""
        return fleet.memo(("numa stages", stages), partial(Lineup.of, self.by_numa[:stages]))


def _min_memory_bytes(devices: Sequence[tuple[int, Accelerator]]) -> int:
    return min((a.memory_bytes for _, a in devices), default=0)


_ASSUMED_CPU = Lineup.of(
    [(-1, Accelerator(AcceleratorType.CPU, FALLBACK_CPU_MEMORY_BYTES, name="host CPU (not in fleet)"))]
)


def plan_sharding(need: Footprint, fleet: Fleet, speed: SpeedModel) -> Plan:
    """Place a model with footprint ``need`` on ``fleet``; the fleet must have an available device."""
    needed = need.total_bytes
    layers = need.profile.layer_count
    what = (
        "weights + KV cache + activations + runtime overhead"
        if need.architecture_known
        else "weights + 20%, ai-hwaccel's rule"
    )
    layer_note = "from the architecture" if need.architecture_known else "as parameter_count / 250M"
    notes = [f"Memory: {needed} bytes ({what}).", f"{layers} layers ({layer_note})."]
    c = fleet.memo(_Candidates, partial(_Candidates.of, fleet))
    if c.best is None:
        raise ValueError("fleet has no available device")

    def finish(strategy: Strategy, lineup: Lineup, layouts: list[Layout], fits: bool, extra: str) -> Plan:
        tps, speed_notes = speed(strategy, lineup, each_layout(layouts, len(lineup)))
        notes.append(extra)
        notes.extend(speed_notes)
        if not fits:
            shard = max(lay.memory_bytes for lay in layouts)
            smallest = lineup.memo("smallest memory", lambda: min(d.memory_bytes for d in lineup.devices))
            notes.append(
                f"Does not fit: a shard needs {shard / 2**30:.1f} GiB, the smallest device planned on has "
                f"{smallest / 2**30:.1f} GiB; the speed is what it would be if it fitted (add devices or "
                "use a narrower precision)."
            )
        return Plan(strategy, lineup, tuple(layouts), needed, layers, tps, fits, tuple(notes))

    def even(lineup: Lineup) -> Layout:
        return Layout(0, layers - 1, _ceil_div(needed, len(lineup)), 1 / len(lineup))

    if needed <= c.best.devices[0].memory_bytes:
        note = f"Fits on the highest-ranked device (fleet index {c.best.indices[0]})."
        return finish(Strategy.NONE, c.best, [Layout(0, layers - 1, needed, 1.0)], True, note)

    if len(c.tpu_chips) and c.tpu_memory_bytes >= needed:
        layout = even(c.tpu_chips)
        fits = layout.memory_bytes <= c.tpu_chip_min_memory_bytes
        note = f"Tensor parallel over {len(c.tpu_chips)} TPU chips."
        return finish(Strategy.TENSOR_PARALLEL, c.tpu_chips, [layout], fits, note)

    pool, bandwidth = c.pool, c.link_bandwidth_gbps
    if len(pool) and c.pool_memory_bytes >= needed:
        if c.nvswitch or (bandwidth > TENSOR_PARALLEL_BANDWIDTH_GBPS and len(pool) <= MAX_TENSOR_PARALLEL_DEVICES):
            why = "NVSwitch present" if c.nvswitch else f"fast links total {bandwidth:g} GB/s over {len(pool)} devices"
            layout = even(pool)
            fits = layout.memory_bytes <= c.pool_min_memory_bytes
            return finish(
                Strategy.TENSOR_PARALLEL, pool, [layout], fits, f"Tensor parallel over {len(pool)} devices ({why})."
            )
        ranges = pipeline_ranges(layers, len(pool))
        stages = c.numa_stages(fleet, len(ranges))
        per = _ceil_div(needed, len(ranges))
        layouts = [Layout(lo, hi, per, (hi - lo + 1) / layers) for lo, hi in ranges]
        smallest = c.pool_min_memory_bytes if len(ranges) == len(pool) else min(a.memory_bytes for a in stages.devices)
        why = f"fast links total {bandwidth:g} GB/s, no NVSwitch"
        note = f"Pipeline parallel over {len(ranges)} stages ordered by NUMA node ({why})."
        return finish(Strategy.PIPELINE_PARALLEL, stages, layouts, per <= smallest, note)

    if c.largest_cpu is not None:
        cpu = c.largest_cpu
        note = f"Nothing else holds the model; runs on the CPU at fleet index {cpu.indices[0]}."
    else:
        cpu = _ASSUMED_CPU
        note = (
            "Nothing in the fleet holds the model; falls back to a host CPU the fleet does not list (16 GiB assumed)."
        )
    fits = needed <= cpu.devices[0].memory_bytes
    return finish(Strategy.NONE, cpu, [Layout(0, layers - 1, needed, 1.0)], fits, note)
