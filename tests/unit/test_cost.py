"""The request cost model (rpc/cost.py): fleets priced by devices, chips and shards, within the caps."""

from __future__ import annotations

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, scheduling_pb2
from accelplan_server.rpc import cost, deadlines, limits

H = hardware_pb2


def _tpus(devices: int, chips: int) -> H.Fleet:
    return H.Fleet(
        accelerators=[
            H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_version=H.TPU_VERSION_V5P, tpu_chip_count=chips)
            for _ in range(devices)
        ]
    )


def _gpus(devices: int) -> H.Fleet:
    return H.Fleet(accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU) for _ in range(devices)])


def test_a_16384_chip_plan_costs_more_than_100_ms_whatever_the_device_count() -> None:
    for devices, chips in ((1, 16384), (16, 1024), (4096, 4)):
        request = planning_pb2.PlanShardingRequest(fleet=_tpus(devices, chips))
        assert cost.estimate_seconds("PlanSharding", request) > 0.1, (devices, chips)


def test_chips_count_not_listed_devices() -> None:
    one_device = planning_pb2.PlanShardingRequest(fleet=_tpus(1, 4096))
    one_chip = planning_pb2.PlanShardingRequest(fleet=_tpus(1, 1))
    assert cost.estimate_seconds("PlanSharding", one_device) > 50 * cost.estimate_seconds("PlanSharding", one_chip)


def test_known_layers_bound_a_gpu_pipeline() -> None:
    request = planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(architecture=models_pb2.ModelArchitecture(num_hidden_layers=80)),
        fleet=_gpus(4096),
    )
    by_layers = cost.estimate_seconds("PlanSharding", request, lambda spec: spec.architecture.num_hidden_layers)
    unknown = cost.estimate_seconds("PlanSharding", request, lambda spec: None)
    assert by_layers == unknown - cost.PER_SHARD_SECONDS * (4096 - 80)


def test_tpu_shards_are_chips_even_with_known_layers() -> None:
    request = planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(architecture=models_pb2.ModelArchitecture(num_hidden_layers=80)),
        fleet=_tpus(4096, 4),
    )
    assert cost.estimate_seconds("PlanSharding", request, lambda spec: 80) > cost.PER_SHARD_SECONDS * 16384


def test_capacity_and_performance_are_priced_by_their_fleet() -> None:
    for method, message in (
        ("EstimateCapacity", planning_pb2.EstimateCapacityRequest),
        ("EstimatePerformance", planning_pb2.EstimatePerformanceRequest),
    ):
        big = cost.estimate_seconds(method, message(fleet=_gpus(4096), batch_size=1 << 20))
        assert big > 0.02
        assert cost.estimate_seconds(method, message(fleet=_gpus(1))) < 0.001


def test_requests_without_a_fleet_cost_the_base() -> None:
    assert cost.estimate_seconds("EstimateMemory", planning_pb2.EstimateMemoryRequest()) == cost.BASE_SECONDS


def test_values_past_the_caps_cost_no_more_than_at_the_caps() -> None:
    huge = planning_pb2.PlanShardingRequest(fleet=_tpus(2, 4_294_967_295))
    at_cap = planning_pb2.PlanShardingRequest(fleet=_tpus(1, limits.MAX_FLEET_TPU_CHIPS))
    assert cost.estimate_seconds("PlanSharding", huge) <= cost.estimate_seconds("PlanSharding", at_cap) + 0.001


def test_the_deadline_guard_uses_the_same_model() -> None:
    model = deadlines.cost_model(deadlines.SERVICE_PREFIX + "PlanSharding")
    assert model is not None
    request = planning_pb2.PlanShardingRequest(fleet=_tpus(4096, 4))
    assert model(request) == cost.estimate_seconds("PlanSharding", request)
    assert deadlines.cost_model(deadlines.SERVICE_PREFIX + "GetModel") is None


def test_right_size_is_priced_by_skus_precisions_and_replica_sizes() -> None:
    """The catalogue-wide default stays inline (under the 20 ms lane threshold); 32 or 64 devices at every
    precision go to the lane; a fixed precision or a few listed skus cost less; caps bound it."""

    def price(max_devices: int = 0, quantization: int = 0, skus: int = 0) -> float:
        request = scheduling_pb2.RightSizeRequest(
            workload=scheduling_pb2.Workload(quantization=quantization),  # type: ignore[arg-type]
            max_devices=max_devices,
            skus=[f"sku-{i}" for i in range(skus)],
        )
        return cost.right_size_seconds(request, 45)

    assert price() == price(8) < 0.02 <= price(32) < price(64)
    assert price(64, quantization=3) < price(64) / 4
    assert price(64, skus=2) < price(64, skus=45) == price(64)
    assert price(10_000) == price(64)  # the search never tries more than MAX_SEARCHED_DEVICES
    model = deadlines.cost_model(deadlines.SCHEDULER_PREFIX + "RightSize", None, 45)
    assert model is not None and model(scheduling_pb2.RightSizeRequest(max_devices=64)) == price(64)
    assert deadlines.cost_model(deadlines.SCHEDULER_PREFIX + "RightSize") is None  # catalogue size unknown
    assert deadlines.cost_model(deadlines.SCHEDULER_PREFIX + "RankNodes", None, 45) is None  # priced as it runs
