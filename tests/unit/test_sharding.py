import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.hardware.accelerators import (
    Accelerator,
    AcceleratorType,
    Fleet,
    GaudiGeneration,
    Interconnect,
    InterconnectKind,
    TpuVersion,
)
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.specs import SpecResolver
from accelplan_server.core.model.footprint import ModelProfile, footprint
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.planning.plan_speed import roofline_speed
from accelplan_server.core.planning.roofline import DEFAULT_DECODE_MBU as DECODE_BANDWIDTH_EFFICIENCY
from accelplan_server.core.planning.sharding import (
    Plan,
    Strategy,
    best_device,
    fast_link_bandwidth_gbps,
    pipeline_ranges,
)
from accelplan_server.core.planning.sharding import plan_sharding as plan_footprint
from accelplan_server.core.quantization import Quantization as Q

T = AcceleratorType
GIB = 2**30
NEED_70B_BF16 = 168_000_000_000


@pytest.fixture(scope="module")
def bandwidths(catalog: Catalog, bandwidths: BandwidthTable) -> "Planner":
    return Planner(catalog, bandwidths)


class Planner:
    """plan_sharding for a bare parameter count, with the roofline speed model."""

    def __init__(self, catalog: Catalog, table: BandwidthTable) -> None:
        self.catalog, self.table = catalog, table


def plan_sharding(params: int, level: Q, fleet: Fleet, planner: Planner) -> Plan:
    profile = ModelProfile.from_count(params)
    fmt = WeightFormat(level)
    return plan_footprint(
        footprint(profile, fmt),
        fleet,
        roofline_speed(profile, fmt, fleet, SpecResolver(planner.catalog, planner.table)),
    )


def layer_count_for(params: int) -> int:
    return ModelProfile.from_count(params).layer_count


def gpu(mem_gib: int, **kw: object) -> Accelerator:
    return Accelerator(T.CUDA_GPU, mem_gib * GIB, **kw)  # type: ignore[arg-type]


def test_fits_on_best_device(bandwidths: Planner) -> None:
    fleet = Fleet((Accelerator(T.CPU, 512 * GIB), gpu(24), gpu(80)))
    plan = plan_sharding(7_000_000_000, Q.FLOAT16, fleet, bandwidths)
    assert plan.strategy is Strategy.NONE
    assert plan.device_count == 1
    assert plan.shards[0].device_index == 2
    assert plan.shards[0].memory_bytes == plan.total_memory_bytes == 16_800_000_000
    assert plan.fits_in_memory


def test_best_device_is_by_rank_and_later_wins_a_tie() -> None:
    a, b = gpu(24), gpu(80)
    assert best_device([(0, a), (1, b)]) == (1, b)
    assert best_device([(0, b), (1, a)]) == (1, a)  # rank tie: the later device, as ai-hwaccel
    cpu = Accelerator(T.CPU, 2048 * GIB)
    assert best_device([(0, cpu), (1, a)]) == (1, a)  # rank beats memory


def test_only_best_device_is_tried_alone(bandwidths: Planner) -> None:
    # The Cerebras (rank 85) is too small; the GPU could hold it alone but ai-hwaccel
    # then shards over both rather than picking the lower-ranked GPU.
    fleet = Fleet((gpu(80), Accelerator(T.CEREBRAS_WSE, 10 * GIB)))
    plan = plan_sharding(30_000_000_000, Q.FLOAT16, fleet, bandwidths)
    assert plan.strategy is Strategy.PIPELINE_PARALLEL
    assert plan.device_count == 2


def test_tpu_tensor_parallel_over_chips(bandwidths: Planner) -> None:
    tpu = Accelerator(T.TPU, 4 * 95 * GIB, tpu_chip_count=4, tpu_version=TpuVersion.V5P)
    fleet = Fleet((Accelerator(T.CPU, 64 * GIB), tpu))
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, fleet, bandwidths)
    assert plan.strategy is Strategy.NONE  # 168 GB fits the 380 GiB TPU device as a whole
    small = Accelerator(T.TPU, 4 * 16 * GIB, tpu_chip_count=4, tpu_version=TpuVersion.V5E)
    big_fleet = Fleet((small, small, Accelerator(T.TPU, 4 * 16 * GIB, tpu_chip_count=4, tpu_version=TpuVersion.V5P)))
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, big_fleet, bandwidths)
    assert plan.strategy is Strategy.TENSOR_PARALLEL
    assert plan.device_count == 12  # chips, not devices
    assert all(s.memory_bytes == -(-NEED_70B_BF16 // 12) for s in plan.shards)
    assert [s.device_index for s in plan.shards] == [0] * 4 + [1] * 4 + [2] * 4


def test_nvswitch_gives_tensor_parallel(bandwidths: Planner) -> None:
    fleet = Fleet(tuple(gpu(24) for _ in range(16)), (Interconnect(InterconnectKind.NVSWITCH, 900),))
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, fleet, bandwidths)
    assert plan.strategy is Strategy.TENSOR_PARALLEL
    assert plan.device_count == 16  # every available device is used
    assert plan.shards[0].memory_bytes == NEED_70B_BF16 // 16


@pytest.mark.parametrize(
    ("links", "devices", "strategy"),
    [
        ((Interconnect(InterconnectKind.NVLINK, 100.0),), 8, Strategy.PIPELINE_PARALLEL),  # not > 100
        ((Interconnect(InterconnectKind.NVLINK, 100.5),), 8, Strategy.TENSOR_PARALLEL),
        ((Interconnect(InterconnectKind.NVLINK, 600.0),), 9, Strategy.PIPELINE_PARALLEL),  # > 8 devices
        (
            (Interconnect(InterconnectKind.XGMI_INFINITY_FABRIC, 60), Interconnect(InterconnectKind.ROCE_V2, 50)),
            8,
            Strategy.TENSOR_PARALLEL,
        ),  # groups add up: 110
        (
            (Interconnect(InterconnectKind.INFINIBAND, 60), Interconnect(InterconnectKind.ROCE, 50)),
            8,
            Strategy.PIPELINE_PARALLEL,
        ),  # same group: max 60, not 110
        ((Interconnect(InterconnectKind.ICI, 101),), 8, Strategy.TENSOR_PARALLEL),
        ((), 8, Strategy.PIPELINE_PARALLEL),
    ],
)
def test_tensor_or_pipeline(
    links: tuple[Interconnect, ...], devices: int, strategy: Strategy, bandwidths: Planner
) -> None:
    fleet = Fleet(tuple(gpu(24) for _ in range(devices)), links)
    assert plan_sharding(70_000_000_000, Q.BFLOAT16, fleet, bandwidths).strategy is strategy


def test_link_groups() -> None:
    fleet = Fleet(
        (),
        (
            Interconnect(InterconnectKind.NVLINK, 300),
            Interconnect(InterconnectKind.NVSWITCH, 900),
            Interconnect(InterconnectKind.ICI, 10),
            Interconnect(InterconnectKind.UNSPECIFIED, 1000),
        ),
    )
    assert fast_link_bandwidth_gbps(fleet) == (910.0, True)


def test_pipeline_orders_by_numa_and_splits_layers(bandwidths: Planner) -> None:
    devices = (gpu(24, numa_node=1), gpu(24), gpu(24, numa_node=0), gpu(24, numa_node=1))
    plan = plan_sharding(30_000_000_000, Q.FLOAT16, Fleet(devices), bandwidths)
    assert plan.strategy is Strategy.PIPELINE_PARALLEL
    assert [s.device_index for s in plan.shards] == [2, 0, 3, 1]  # NUMA 0, 1, 1, unknown last; stable
    assert plan.layer_count == 120
    assert [(s.first_layer, s.last_layer) for s in plan.shards] == [(0, 29), (30, 59), (60, 89), (90, 119)]
    assert len({s.memory_bytes for s in plan.shards}) == 1
    assert plan.shards[0].memory_bytes == 72_000_000_000 // 4  # 30B at FP16: 60e9 + 20%


def test_layer_ranges() -> None:
    assert layer_count_for(70_000_000_000) == 280
    assert layer_count_for(1) == 1
    assert pipeline_ranges(10, 4) == [(0, 2), (3, 5), (6, 8), (9, 9)]
    assert pipeline_ranges(120, 3) == [(0, 39), (40, 79), (80, 119)]
    # ai-hwaccel would repeat the last layer on the extra stages; we drop them instead.
    assert pipeline_ranges(10, 6) == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert pipeline_ranges(1, 3) == [(0, 0)]


def test_npus_and_cpus_are_never_sharded(bandwidths: Planner) -> None:
    fleet = Fleet((Accelerator(T.APPLE_NPU, 200 * GIB), Accelerator(T.CPU, 100 * GIB), gpu(24)))
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, fleet, bandwidths)
    # Nothing but the GPU may shard, it alone is too small: CPU fallback on the fleet's CPU.
    assert plan.strategy is Strategy.NONE
    assert plan.shards[0].device.type is T.CPU
    assert plan.shards[0].device_index == 1
    assert not plan.fits_in_memory


def test_cpu_fallback_without_a_listed_cpu(bandwidths: Planner) -> None:
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, Fleet((gpu(24),)), bandwidths)
    assert plan.shards[0].device_index == -1
    assert plan.shards[0].device.memory_bytes == 16 * GIB
    assert not plan.fits_in_memory


def test_unavailable_devices_are_skipped(bandwidths: Planner) -> None:
    fleet = Fleet((gpu(80), gpu(80, available=False)))
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, fleet, bandwidths)
    assert plan.strategy is Strategy.NONE and plan.shards[0].device.type is T.CPU


def test_gaudi_and_gpus_shard_together(bandwidths: Planner) -> None:
    fleet = Fleet((Accelerator(T.GAUDI, 96 * GIB, gaudi_generation=GaudiGeneration.GAUDI2), gpu(80)))
    plan = plan_sharding(70_000_000_000, Q.BFLOAT16, fleet, bandwidths)
    assert plan.strategy is Strategy.PIPELINE_PARALLEL
    assert {s.device.type for s in plan.shards} == {T.GAUDI, T.CUDA_GPU}


def test_decode_speed_from_bandwidth(bandwidths: Planner) -> None:
    # 8B at FP16 on one 1000 GB/s device: 16e9 bytes / (1000e9 * eff) per token.
    fleet = Fleet((gpu(80, memory_bandwidth_gbps=1000.0),))
    plan = plan_sharding(8_000_000_000, Q.FLOAT16, fleet, bandwidths)
    assert plan.tokens_per_second == pytest.approx(1000e9 * DECODE_BANDWIDTH_EFFICIENCY / 16e9)
    # Tensor parallel over 4: each reads a quarter at once -> 4x faster.
    tp = Fleet(
        tuple(gpu(10, memory_bandwidth_gbps=1000.0) for _ in range(4)), (Interconnect(InterconnectKind.NVSWITCH, 900),)
    )
    plan = plan_sharding(8_000_000_000, Q.FLOAT16, tp, bandwidths)
    assert plan.strategy is Strategy.TENSOR_PARALLEL
    assert plan.tokens_per_second == pytest.approx(4 * 1000e9 * DECODE_BANDWIDTH_EFFICIENCY / 16e9)
    # Pipeline over 4: stages run one after another -> same as one device.
    pp = Fleet(tuple(gpu(10, memory_bandwidth_gbps=1000.0) for _ in range(4)))
    plan = plan_sharding(8_000_000_000, Q.FLOAT16, pp, bandwidths)
    assert plan.strategy is Strategy.PIPELINE_PARALLEL
    assert plan.tokens_per_second == pytest.approx(1000e9 * DECODE_BANDWIDTH_EFFICIENCY / 16e9)


def test_decode_speed_unknown_without_bandwidth(bandwidths: Planner) -> None:
    plan = plan_sharding(1_000_000_000, Q.FLOAT16, Fleet((Accelerator(T.GROQ_LPU, 230 * 2**20 * 100),)), bandwidths)
    assert plan.tokens_per_second is None
    assert any("unknown" in a for a in plan.assumptions)


def test_default_bandwidth_is_stated(bandwidths: Planner) -> None:
    plan = plan_sharding(8_000_000_000, Q.FLOAT16, Fleet((gpu(80),)), bandwidths)
    assert plan.tokens_per_second is not None
    assert any("assumed" in a and "GB/s" in a for a in plan.assumptions)


def test_remembered_arrangement_equals_the_plain_one() -> None:
    """SpecResolver.arrangement keeps Arrangement.of's answer per spec keys: same fields, shared across calls."""
    from dataclasses import astuple

    from accelplan_server.core.catalog import load_catalog
    from accelplan_server.core.hardware.specs import Arrangement

    catalog = load_catalog()
    specs_of = SpecResolver(catalog, BandwidthTable.from_catalog(catalog))
    mixed = [gpu(80, sku="h100-sxm"), gpu(80, sku="h100-sxm"), gpu(48, sku="l40s"), gpu(24)]
    for devices, tp, pp in ((mixed[:1], 1, 1), (mixed[:2], 2, 1), (mixed, 2, 2), (mixed, 1, 4)):
        keys = tuple(d.spec_key for d in devices)
        for q in (Q.BFLOAT16, Q.FP8, Q.INT4):
            plain = Arrangement.of([specs_of(d) for d in devices], q, tp, pp)
            kept = specs_of.arrangement(devices, keys, q, tp, pp, 900.0)
            assert astuple(kept) == astuple(plain)
            assert specs_of.arrangement(devices, keys, q, tp, pp, 900.0) is kept
            assert specs_of.arrangement(devices, keys, q, tp, pp, 450.0) is not kept
    many = [gpu(80)] * (SpecResolver.MAX_ARRANGED_DEVICES + 1)
    keys = tuple(d.spec_key for d in many)
    assert specs_of.arrangement(many, keys, Q.BFLOAT16, 1, len(many), 0.0) is not specs_of.arrangement(
        many, keys, Q.BFLOAT16, 1, len(many), 0.0
    )
