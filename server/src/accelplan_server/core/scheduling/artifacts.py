"""What a scheduler or serving engine consumes to run a variant.

Kubernetes resource limits and node selector, vLLM arguments, a Slurm GRES string and Ray
placement-group bundles.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from accelplan_server.core.catalog import AcceleratorModel
from accelplan_server.core.hardware.accelerators import AcceleratorType
from accelplan_server.core.quantization import Quantization as Q
from accelplan_server.core.scheduling.labels import AP_SKU, TPU_TOPOLOGY, LabelTable
from accelplan_server.core.scheduling.sizing import Attempt, ServingWorkload

RESOURCE_NAME = {
    AcceleratorType.CUDA_GPU: "nvidia.com/gpu",
    AcceleratorType.ROCM_GPU: "amd.com/gpu",
    AcceleratorType.TPU: "google.com/tpu",
    AcceleratorType.GAUDI: "habana.ai/gaudi",
    AcceleratorType.AWS_NEURON: "aws.amazon.com/neuron",
}
"""Extended resource each kind's Kubernetes device plugin advertises."""
RAY_RESOURCE = {
    AcceleratorType.CUDA_GPU: "GPU",
    AcceleratorType.ROCM_GPU: "GPU",
    AcceleratorType.TPU: "TPU",
    AcceleratorType.GAUDI: "HPU",
}
"""Ray's built-in resource name for each kind (Ray counts AMD GPUs as GPU, Gaudi as HPU)."""
VLLM_DTYPE = {Q.NONE: "float32", Q.FLOAT16: "float16", Q.BFLOAT16: "bfloat16"}
"""vLLM --dtype values for unquantized weights."""
DEFAULT_DEVICES_PER_NODE = 8


class RayStrategy(enum.IntEnum):
    """Ray placement-group strategy (accelplan.v1.RayPlacementStrategy's numbers)."""

    PACK = 1
    SPREAD = 2
    STRICT_PACK = 3
    STRICT_SPREAD = 4


@dataclass(frozen=True)
class Artifacts:
    """The artifacts of one variant."""

    kubernetes_resource_limits: dict[str, str]
    kubernetes_node_selector: dict[str, str]
    vllm_args: tuple[str, ...]
    slurm_gres: str
    ray_bundles: tuple[dict[str, float], ...]
    ray_strategy: RayStrategy
    assumptions: tuple[str, ...]


def vllm_args(workload: ServingWorkload, a: Attempt) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(vLLM `vllm serve` arguments, notes on what they cannot say)."""
    args = [
        "--tensor-parallel-size",
        str(a.tensor_parallel),
        "--pipeline-parallel-size",
        str(a.pipeline_parallel),
        "--max-model-len",
        str(workload.context_length),
        "--max-num-seqs",
        str(workload.concurrency),
    ]
    notes: list[str] = []
    q = a.quantization
    if q in VLLM_DTYPE:
        args += ["--dtype", VLLM_DTYPE[q]]
    elif q is Q.FP8:
        args += ["--quantization", "fp8"]
    else:
        notes.append(
            f"{q.display_name} weights need a pre-quantized checkpoint (GPTQ or AWQ); vLLM reads the method from "
            "its config, so no --quantization is given."
        )
    kv = workload.kv_quantization
    if kv is Q.FP8:
        args += ["--kv-cache-dtype", "fp8"]
    elif kv in (Q.INT8, Q.INT4):
        notes.append(f"vLLM has no {kv.display_name} KV cache; --kv-cache-dtype fp8 is its 8-bit option.")
    return tuple(args), tuple(notes)


def artifacts_for(
    model: AcceleratorModel, a: Attempt, workload: ServingWorkload, table: LabelTable, devices_per_node: int
) -> Artifacts:
    """Every artifact for ``a`` on devices of ``model``."""
    n = a.device_count
    notes: list[str] = []
    resource = RESOURCE_NAME.get(model.type)
    limits = {resource: str(n)} if resource else {}
    selector: dict[str, str] = {}
    label = table.selector.get(model.sku)
    if label is not None:
        selector[label[0]] = label[1]
    else:
        selector[AP_SKU] = model.sku
    if model.type is AcceleratorType.TPU:
        tpu = table.tpu_row(model.sku)
        topology = tpu.single_host_topologies.get(str(n)) if tpu else None
        if topology:
            selector[TPU_TOPOLOGY] = topology
        else:
            notes.append(f"No single-host GKE topology has {n} {model.sku} chips; set {TPU_TOPOLOGY} yourself.")
    args, arg_notes = vllm_args(workload, a)
    notes.extend(arg_notes)
    gres_type = table.gres_types.get(model.sku)
    gres = f"gpu:{gres_type}:{n}" if gres_type else ""
    ray = RAY_RESOURCE.get(model.type)
    bundles = tuple({ray: 1.0} for _ in range(n)) if ray else ()
    if not ray:
        notes.append(f"Ray has no built-in resource for {model.type.name}: no placement-group bundles given.")
    strategy = RayStrategy.STRICT_PACK if n <= devices_per_node else RayStrategy.PACK
    return Artifacts(limits, selector, args, gres, bundles, strategy, tuple(notes))
