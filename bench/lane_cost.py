"""Where a fleet request's CPU goes, in process (no gRPC): the figures behind rpc/cost.py's constants.

For each fleet shape, three distinct fleets (new device ids each time, so the
fleet cache does not help) are planned for a catalogue model; the fastest of
the three is printed with the plan's shard count, beside rpc/cost.py's estimate.

Run: .venv/bin/python -m bench.lane_cost
"""

from __future__ import annotations

import time
from typing import Any

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, quantization_pb2
from accelplan_server.core.catalog import load_catalog
from accelplan_server.rpc import cost
from accelplan_server.rpc.planner import PlannerServicer
from accelplan_server.runtime.context import HandlerContext

H = hardware_pb2


def tpu(devices: int, chips: int, offset: int) -> Any:
    return H.Fleet(
        accelerators=[
            H.Accelerator(
                type=H.ACCELERATOR_TYPE_TPU, tpu_version=H.TPU_VERSION_V5P, tpu_chip_count=chips, device_id=i + offset
            )
            for i in range(devices)
        ]
    )


def gpu(devices: int, offset: int) -> Any:
    return H.Fleet(
        accelerators=[
            H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 << 30, device_id=i + offset)
            for i in range(devices)
        ]
    )


SHAPES = {
    "1 TPU x 16,384 chips": lambda o: tpu(1, 16384, o),
    "4,096 TPUs x 4 chips": lambda o: tpu(4096, 4, o),
    "16 TPUs x 1,024 chips": lambda o: tpu(16, 1024, o),
    "4,096 GPUs": lambda o: gpu(4096, o),
    "1,024 GPUs": lambda o: gpu(1024, o),
    "64 GPUs": lambda o: gpu(64, o),
}


def main() -> int:
    servicer = PlannerServicer(load_catalog(), remember_answers=False)
    layers = {m: servicer.profiles[m].architecture.num_hidden_layers for m in ("llama-3.1-8b", "llama-3.1-405b")}  # type: ignore[union-attr]
    print(f"{'fleet':24s} {'model':16s} {'CPU ms':>8s} {'shards':>7s} {'estimate ms':>12s}")
    for label, make in SHAPES.items():
        for model_id in ("llama-3.1-8b", "llama-3.1-405b"):
            times = []
            shards = 0
            request = None
            for k in range(3):
                request = planning_pb2.PlanShardingRequest(
                    model=models_pb2.ModelSpec(model_id=model_id),
                    quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
                    fleet=make(100_000 * (k + 1)),
                )
                t0 = time.process_time()
                plan = servicer.PlanSharding(request, HandlerContext(None))  # type: ignore[arg-type]
                times.append(time.process_time() - t0)
                shards = len(plan.shards)
            assert request is not None
            estimate = cost.estimate_seconds("PlanSharding", request, lambda spec: layers.get(spec.model_id))
            print(f"{label:24s} {model_id:16s} {min(times) * 1e3:8.1f} {shards:7d} {estimate * 1e3:12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
