"""Bad input: a clear status naming each bad field, never UNKNOWN, and the server stays up."""

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from accelplan.v1 import (
    cost_pb2,
    hardware_pb2,
    models_pb2,
    planner_service_pb2_grpc,
    planning_pb2,
    quantization_pb2,
    training_pb2,
)

H = hardware_pb2
Q = quantization_pb2
M = models_pb2
P = planning_pb2
GIB = 2**30
BF16 = Q.QUANTIZATION_LEVEL_BFLOAT16
GPU = H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 * GIB)
M70 = M.ModelSpec(parameter_count=70_000_000_000)


def fleet(*devices: H.Accelerator, links: tuple[H.Interconnect, ...] = ()) -> H.Fleet:
    return H.Fleet(accelerators=list(devices), interconnects=list(links))


Stub = planner_service_pb2_grpc.PlannerServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT

CASES: list[tuple[str, Callable[[Stub], Any], Any, grpc.StatusCode, set[str]]] = [
    (
        "resolve: nothing set",
        lambda s: s.ResolveQuantizationLevel,
        Q.ResolveQuantizationLevelRequest(),
        INVALID,
        {"selector"},
    ),
    (
        "resolve: 12 bits",
        lambda s: s.ResolveQuantizationLevel,
        Q.ResolveQuantizationLevelRequest(bits=12),
        INVALID,
        {"bits"},
    ),
    (
        "resolve: unknown name",
        lambda s: s.ResolveQuantizationLevel,
        Q.ResolveQuantizationLevelRequest(name="fp7"),
        INVALID,
        {"name"},
    ),
    (
        "resolve: UNSPECIFIED",
        lambda s: s.ResolveQuantizationLevel,
        Q.ResolveQuantizationLevelRequest(level=Q.QUANTIZATION_LEVEL_UNSPECIFIED),
        INVALID,
        {"level"},
    ),
    (
        "resolve: unknown enum",
        lambda s: s.ResolveQuantizationLevel,
        Q.ResolveQuantizationLevelRequest(level=99),
        INVALID,
        {"level"},
    ),
    (
        "estimate: empty request",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(),
        INVALID,
        {"model", "quantization"},
    ),
    (
        "estimate: zero params",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(model=M.ModelSpec(parameter_count=0), quantization=BF16),
        INVALID,
        {"model.parameter_count"},
    ),
    (
        "estimate: absurd params",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(model=M.ModelSpec(parameter_count=2**64 - 1), quantization=BF16),
        INVALID,
        {"model.parameter_count"},
    ),
    (
        "estimate: empty id",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(model=M.ModelSpec(model_id=" "), quantization=BF16),
        INVALID,
        {"model.model_id"},
    ),
    (
        "estimate: huge id",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(model=M.ModelSpec(model_id="x" * 10_000), quantization=BF16),
        INVALID,
        {"model.model_id"},
    ),
    (
        "estimate: unknown model",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(model=M.ModelSpec(model_id="gpt-17"), quantization=BF16),
        grpc.StatusCode.NOT_FOUND,
        set(),
    ),
    (
        "estimate: unknown quantization",
        lambda s: s.EstimateMemory,
        P.EstimateMemoryRequest(model=M70, quantization=42),
        INVALID,
        {"quantization"},
    ),
    (
        "plan: empty fleet",
        lambda s: s.PlanSharding,
        P.PlanShardingRequest(model=M70, quantization=BF16),
        INVALID,
        {"fleet.accelerators"},
    ),
    (
        "plan: all unavailable",
        lambda s: s.PlanSharding,
        P.PlanShardingRequest(
            model=M70,
            quantization=BF16,
            fleet=fleet(H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=GIB, unavailable=True)),
        ),
        INVALID,
        {"fleet.accelerators"},
    ),
    (
        "plan: bad devices",
        lambda s: s.PlanSharding,
        P.PlanShardingRequest(
            model=M70,
            quantization=BF16,
            fleet=fleet(
                GPU,
                H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=0),
                H.Accelerator(memory_bytes=GIB),
                H.Accelerator(type=77, memory_bytes=GIB),
                H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_version=9, memory_bytes=GIB),
                H.Accelerator(
                    type=H.ACCELERATOR_TYPE_CUDA_GPU,
                    memory_bytes=GIB,
                    memory_bandwidth_gigabytes_per_second=float("nan"),
                ),
                H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=2**63),
            ),
        ),
        INVALID,
        {
            "fleet.accelerators[1].memory_bytes",
            "fleet.accelerators[2].type",
            "fleet.accelerators[3].type",
            "fleet.accelerators[4].tpu_version",
            "fleet.accelerators[5].memory_bandwidth_gigabytes_per_second",
            "fleet.accelerators[6].memory_bytes",
        },
    ),
    (
        "plan: bad link",
        lambda s: s.PlanSharding,
        P.PlanShardingRequest(
            model=M70,
            quantization=BF16,
            fleet=fleet(
                GPU,
                links=(
                    H.Interconnect(kind=H.INTERCONNECT_KIND_NVLINK, bandwidth_gigabytes_per_second=-1),
                    H.Interconnect(bandwidth_gigabytes_per_second=1),
                ),
            ),
        ),
        INVALID,
        {"fleet.interconnects[0].bandwidth_gigabytes_per_second", "fleet.interconnects[1].kind"},
    ),
    (
        "plan: too many devices",
        lambda s: s.PlanSharding,
        P.PlanShardingRequest(model=M70, quantization=BF16, fleet=fleet(*([GPU] * 4097))),
        INVALID,
        {"fleet.accelerators"},
    ),
    (
        "plan: everything wrong at once",
        lambda s: s.PlanSharding,
        P.PlanShardingRequest(),
        INVALID,
        {"model", "quantization", "fleet.accelerators"},
    ),
    (
        "suggest: zero-memory device",
        lambda s: s.SuggestQuantization,
        P.SuggestQuantizationRequest(model=M70, fleet=fleet(H.Accelerator(type=H.ACCELERATOR_TYPE_CPU))),
        INVALID,
        {"fleet.accelerators[0].memory_bytes"},
    ),
    (
        "train: no method",
        lambda s: s.EstimateTrainingMemory,
        training_pb2.EstimateTrainingMemoryRequest(model=M70),
        INVALID,
        {"method"},
    ),
    (
        "train: bits without qlora",
        lambda s: s.EstimateTrainingMemory,
        training_pb2.EstimateTrainingMemoryRequest(model=M70, method=training_pb2.TRAINING_METHOD_LORA, qlora_bits=4),
        INVALID,
        {"qlora_bits"},
    ),
    (
        "train: 99 qlora bits",
        lambda s: s.EstimateTrainingMemory,
        training_pb2.EstimateTrainingMemoryRequest(model=M70, method=training_pb2.TRAINING_METHOD_QLORA, qlora_bits=99),
        INVALID,
        {"qlora_bits"},
    ),
    (
        "train: unknown target",
        lambda s: s.EstimateTrainingMemory,
        training_pb2.EstimateTrainingMemoryRequest(model=M70, method=training_pb2.TRAINING_METHOD_LORA, target=12),
        INVALID,
        {"target"},
    ),
    (
        "cost: bad provider and page",
        lambda s: s.RecommendInstances,
        cost_pb2.RecommendInstancesRequest(model=M70, quantization=BF16, provider="oracle", page_size=1000),
        INVALID,
        {"provider", "page_size"},
    ),
    (
        "cost: negative page",
        lambda s: s.RecommendInstances,
        cost_pb2.RecommendInstancesRequest(model=M70, quantization=BF16, page_size=-1),
        INVALID,
        {"page_size"},
    ),
    (
        "cost: forged token",
        lambda s: s.RecommendInstances,
        cost_pb2.RecommendInstancesRequest(model=M70, quantization=BF16, page_token="bm9wZQ=="),
        INVALID,
        {"page_token"},
    ),
    ("models: page too big", lambda s: s.ListModels, M.ListModelsRequest(page_size=100_000), INVALID, {"page_size"}),
    ("models: garbage token", lambda s: s.ListModels, M.ListModelsRequest(page_token="%%%"), INVALID, {"page_token"}),
    ("get model: empty", lambda s: s.GetModel, M.GetModelRequest(), INVALID, {"model_id"}),
    ("get model: unknown", lambda s: s.GetModel, M.GetModelRequest(model_id="nope"), grpc.StatusCode.NOT_FOUND, set()),
    (
        "compatible: nothing set",
        lambda s: s.FindCompatibleModels,
        M.FindCompatibleModelsRequest(),
        INVALID,
        {"quantization", "available_memory_bytes"},
    ),
    (
        "filter: unknown requirement",
        lambda s: s.FilterAccelerators,
        H.FilterAcceleratorsRequest(fleet=fleet(GPU), requirement=H.AcceleratorRequirement(kind=50)),
        INVALID,
        {"requirement.kind"},
    ),
]


def violations(err: grpc.RpcError) -> set[str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    fields: set[str] = set()
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields |= {v.field for v in bad.field_violations}
            assert all(v.description for v in bad.field_violations)
    return fields


@pytest.mark.parametrize(("name", "method", "request_", "code", "fields"), CASES, ids=[c[0] for c in CASES])
def test_bad_request(
    stub: Stub, name: str, method: Callable[[Stub], Any], request_: Any, code: grpc.StatusCode, fields: set[str]
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        method(stub)(request_, timeout=10)
    assert err.value.code() == code, err.value.details()
    assert violations(err.value) == fields
    assert err.value.details()
    # The server is still healthy afterwards.
    assert stub.ListQuantizationLevels(quantization_pb2.ListQuantizationLevelsRequest(), timeout=10).levels
