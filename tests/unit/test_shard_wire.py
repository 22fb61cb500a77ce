"""The plan message built from wire bytes (shard_wire) equals the message built field by field."""

import pytest

from accelplan.v1 import hardware_pb2, planning_pb2
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.hardware import accelerators as hw
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.specs import SpecResolver
from accelplan_server.core.model.footprint import ModelProfile, footprint
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.planning.plan_speed import roofline_speed
from accelplan_server.core.planning.sharding import Plan, Strategy, plan_sharding
from accelplan_server.core.quantization import Quantization as Q
from accelplan_server.rpc import convert, messages
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.shard_wire import varint
from accelplan_server.rpc.uint64 import Fit

GIB = 2**30
H = hardware_pb2


def reference_plan_message(plan: Plan, fleet: hw.Fleet, fleet_msg: H.Fleet | None) -> planning_pb2.ShardingPlan:
    """The plain field-by-field build the wire encoding must match."""
    msg = planning_pb2.ShardingPlan(
        strategy=convert.strategy_value(plan.strategy),
        device_count=plan.device_count,
        total_memory_bytes=plan.total_memory_bytes,
        fits_in_memory=plan.fits_in_memory,
        layer_count=plan.layer_count,
        assumptions=plan.assumptions,
    )
    for s in plan.shards:
        shard = msg.shards.add(
            shard_id=s.shard_id, first_layer=s.first_layer, last_layer=s.last_layer, memory_bytes=s.memory_bytes
        )
        if s.device_index < 0:
            shard.accelerator.CopyFrom(convert.accelerator_message(s.device))
            continue
        sent = fleet_msg.accelerators[s.device_index] if fleet_msg is not None else None
        if sent is None or not sent.memory_bytes or sent.sku:
            sent = convert.accelerator_message(fleet.accelerators[s.device_index])
        shard.accelerator.CopyFrom(sent)
        shard.accelerator_index = s.device_index
    if plan.tokens_per_second is not None:
        msg.estimated_tokens_per_second = plan.tokens_per_second
    return msg


def gpus(n: int, memory_gib: int = 80, **link: object) -> H.Fleet:
    return H.Fleet(
        accelerators=[
            H.Accelerator(
                type=H.ACCELERATOR_TYPE_CUDA_GPU,
                device_id=i,
                memory_bytes=memory_gib * GIB,
                numa_node=i % 2,
                unavailable=i % 7 == 3,
            )
            for i in range(n)
        ],
        interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVSWITCH, bandwidth_gigabytes_per_second=900)]
        if link.get("nvswitch", True)
        else [],
    )


FLEETS = {
    "300 GPUs with NVSwitch (shard ids and device ids past one varint byte)": gpus(300),
    "40 GPUs on Ethernet (pipeline: a layout per shard)": gpus(40, 24, nvswitch=False),
    "TPU chips": H.Fleet(
        accelerators=[
            H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_version=H.TPU_VERSION_V5P, tpu_chip_count=4, device_id=i)
            for i in range(3)
        ]
    ),
    "devices named by sku (rebuilt, not echoed)": H.Fleet(
        accelerators=[H.Accelerator(sku="h100-sxm", device_id=i) for i in range(4)],
        interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVLINK, bandwidth_gigabytes_per_second=900)],
    ),
    "a listed CPU": H.Fleet(accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_CPU, memory_bytes=64 * GIB)]),
    "nothing holds it (assumed CPU)": H.Fleet(
        accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=8 * GIB)]
    ),
}


def validated(fleet_msg: H.Fleet, catalog: Catalog) -> hw.Fleet:
    bad = Violations()
    fleet = convert.fleet(fleet_msg, "fleet", bad, required=True, skus={a.sku.lower(): a for a in catalog.accelerators})
    bad.raise_if_any()
    return fleet


@pytest.fixture(scope="module")
def resolver(catalog: Catalog, bandwidths: BandwidthTable) -> SpecResolver:
    return SpecResolver(catalog, bandwidths)


@pytest.mark.parametrize("name", list(FLEETS))
@pytest.mark.parametrize("parameters", [7_000_000_000, 180_000_000_000, 1_000_000_000_000])
def test_wire_built_plan_equals_field_by_field(
    name: str, parameters: int, catalog: Catalog, resolver: SpecResolver
) -> None:
    fleet_msg = FLEETS[name]
    fleet = validated(fleet_msg, catalog)
    profile = ModelProfile.from_count(parameters)
    fmt = WeightFormat(Q.BFLOAT16)
    plan = plan_sharding(footprint(profile, fmt), fleet, roofline_speed(profile, fmt, fleet, resolver))
    for _ in range(2):  # the second time from what the lineup kept
        assert messages.plan_message(plan, fleet, fleet_msg, Fit(fleet_msg)) == reference_plan_message(
            plan, fleet, fleet_msg
        )
    assert messages.plan_message(plan, fleet, None, Fit(fleet_msg)) == reference_plan_message(plan, fleet, None)


def test_the_cases_cover_each_strategy_and_both_layout_forms(catalog: Catalog, resolver: SpecResolver) -> None:
    seen = set()
    for fleet_msg in FLEETS.values():
        fleet = validated(fleet_msg, catalog)
        for parameters in (7_000_000_000, 180_000_000_000, 1_000_000_000_000):
            profile = ModelProfile.from_count(parameters)
            fmt = WeightFormat(Q.BFLOAT16)
            plan = plan_sharding(footprint(profile, fmt), fleet, roofline_speed(profile, fmt, fleet, resolver))
            seen.add((plan.strategy, len(plan.layouts) == 1, plan.shards[0].device_index < 0))
    assert {s for s, _, _ in seen} == {Strategy.NONE, Strategy.TENSOR_PARALLEL, Strategy.PIPELINE_PARALLEL}
    assert (Strategy.PIPELINE_PARALLEL, False, False) in seen  # a layout per shard
    assert (Strategy.NONE, True, True) in seen  # the assumed CPU


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16_383, 16_384, 2**32 - 1, 2**64 - 1])
def test_varint_matches_protobuf(n: int) -> None:
    encoded = planning_pb2.ModelShard(memory_bytes=n).SerializeToString()
    assert encoded == (b"\x20" + varint(n) if n else b"")
