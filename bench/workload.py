"""The requests the load generator, the soak test and the profiler send (one definition, shared)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from accelplan.v1 import cost_pb2, hardware_pb2, models_pb2, planning_pb2, quantization_pb2

H = hardware_pb2
Q = quantization_pb2
GIB = 2**30
SERVICE = "accelplan.v1.PlannerService"


def gpu_fleet(n: int, memory_gib: int = 80) -> H.Fleet:
    """``n`` CUDA GPUs with NVSwitch (tensor parallel when the model needs more than one)."""
    return H.Fleet(
        accelerators=[
            H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, device_id=i, memory_bytes=memory_gib * GIB, numa_node=i % 2)
            for i in range(n)
        ],
        interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVSWITCH, bandwidth_gigabytes_per_second=900)],
    )


def pipeline_fleet(n: int, memory_gib: int = 24) -> H.Fleet:
    """``n`` GPUs over plain Ethernet: a pipeline-parallel plan with ``n`` stages."""
    return H.Fleet(
        accelerators=[
            H.Accelerator(type=H.ACCELERATOR_TYPE_ROCM_GPU, device_id=i, memory_bytes=memory_gib * GIB, numa_node=i % 4)
            for i in range(n)
        ]
    )


@dataclass(frozen=True)
class Call:
    """One benchmarked RPC: a label, the method path, the request and its response class."""

    label: str
    method: str
    request: Message
    response: Any
    variants: tuple[Message, ...] = ()
    """More requests sent in turn with ``request``: distinct requests defeat the server's plan cache."""

    @property
    def path(self) -> str:
        return self.method if self.method.startswith("/") else f"/{SERVICE}/{self.method}"


BF16 = Q.QUANTIZATION_LEVEL_BFLOAT16

NOOP = Call(
    "ListQuantizationLevels (no-op)",
    "ListQuantizationLevels",
    Q.ListQuantizationLevelsRequest(),
    Q.ListQuantizationLevelsResponse,
)

CALLS: list[Call] = [
    NOOP,
    Call(
        "ResolveQuantizationLevel",
        "ResolveQuantizationLevel",
        Q.ResolveQuantizationLevelRequest(name="bf16"),
        Q.QuantizationLevelInfo,
    ),
    Call(
        "EstimateMemory (parameter_count)",
        "EstimateMemory",
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000), quantization=BF16
        ),
        planning_pb2.MemoryEstimate,
    ),
    Call(
        "EstimateMemory (model_id)",
        "EstimateMemory",
        planning_pb2.EstimateMemoryRequest(model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), quantization=BF16),
        planning_pb2.MemoryEstimate,
    ),
    Call(
        "EstimateMemory (parameter_count, distinct)",
        "EstimateMemory",
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000), quantization=BF16
        ),
        planning_pb2.MemoryEstimate,
        variants=tuple(
            planning_pb2.EstimateMemoryRequest(
                model=models_pb2.ModelSpec(parameter_count=70_000_000_000 + i), quantization=BF16
            )
            for i in range(1, 1024)
        ),
    ),
    Call(
        "EstimateMemory (model_id, distinct)",
        "EstimateMemory",
        planning_pb2.EstimateMemoryRequest(model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), quantization=BF16),
        planning_pb2.MemoryEstimate,
        variants=tuple(
            planning_pb2.EstimateMemoryRequest(
                model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), quantization=BF16, context_length=4096 + i
            )
            for i in range(1, 1024)
        ),
    ),
    Call(
        "PlanSharding (8 devices)",
        "PlanSharding",
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), quantization=BF16, fleet=gpu_fleet(8)
        ),
        planning_pb2.ShardingPlan,
    ),
    Call(
        "PlanSharding (8 devices, distinct)",
        "PlanSharding",
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000), quantization=BF16, fleet=gpu_fleet(8)
        ),
        planning_pb2.ShardingPlan,
        variants=tuple(
            planning_pb2.PlanShardingRequest(
                model=models_pb2.ModelSpec(parameter_count=70_000_000_000 + i), quantization=BF16, fleet=gpu_fleet(8)
            )
            for i in range(1, 1024)
        ),
    ),
    Call(
        "PlanSharding (1,024 devices)",
        "PlanSharding",
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=2_000_000_000_000), quantization=BF16, fleet=gpu_fleet(1024)
        ),
        planning_pb2.ShardingPlan,
    ),
    Call(
        "PlanSharding (1,024 devices, distinct)",
        "PlanSharding",
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=2_000_000_000_000), quantization=BF16, fleet=gpu_fleet(1024)
        ),
        planning_pb2.ShardingPlan,
        variants=tuple(
            planning_pb2.PlanShardingRequest(
                model=models_pb2.ModelSpec(parameter_count=2_000_000_000_000 + i),
                quantization=BF16,
                fleet=gpu_fleet(1024),
            )
            for i in range(1, 512)
        ),
    ),
    Call(
        "SuggestQuantization",
        "SuggestQuantization",
        planning_pb2.SuggestQuantizationRequest(
            model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), fleet=gpu_fleet(8, 24), consider_sharding=True
        ),
        planning_pb2.SuggestQuantizationResponse,
    ),
    Call(
        "RecommendInstances",
        "RecommendInstances",
        cost_pb2.RecommendInstancesRequest(
            model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), quantization=BF16, page_size=10
        ),
        cost_pb2.RecommendInstancesResponse,
    ),
]
"""Every benchmarked RPC; the first is the no-op the others are compared with."""


def by_label(labels: str | None) -> list[Call]:
    """The calls whose labels start with any of the comma-separated prefixes (all when None)."""
    if not labels:
        return CALLS
    wanted = [w.strip().lower() for w in labels.split(",") if w.strip()]
    return [c for c in CALLS if any(c.label.lower().startswith(w) for w in wanted)]
