"""The speed model plans use: the roofline of performance.py at batch 1, short context."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from accelplan_server.core.devices import DeviceSpecs
from accelplan_server.core.footprint import ModelProfile
from accelplan_server.core.hardware import Accelerator, Fleet
from accelplan_server.core.performance import Efficiency, Workload, estimate_performance
from accelplan_server.core.sharding import Shard, SpeedModel, Strategy, device_link_bandwidth_gbps
from accelplan_server.core.weights import WeightFormat

PLAN_OUTPUT_TOKENS = 128
"""Plans quote decode speed for generating 128 tokens from an empty context (llama-bench's tg128)."""


def roofline_speed(
    profile: ModelProfile,
    fmt: WeightFormat,
    fleet: Fleet,
    specs_of: Callable[[Accelerator], DeviceSpecs],
    efficiency: Efficiency | None = None,
) -> SpeedModel:
    """A SpeedModel for plans of ``profile`` on ``fleet``."""
    efficiency = efficiency or Efficiency()

    def speed(strategy: Strategy, shards: Sequence[Shard]) -> tuple[float | None, list[str]]:
        specs = [specs_of(s.device) for s in shards]
        unknown = [s.device.type.name for s, spec in zip(shards, specs, strict=True) if spec.bandwidth_gbps <= 0]
        if unknown:
            return None, [
                f"Decode speed unknown: no memory bandwidth for a {unknown[0]} device; "
                "set memory_bandwidth_gigabytes_per_second or sku."
            ]
        n = len(shards)
        tp, pp = (n, 1) if strategy is Strategy.TENSOR_PARALLEL else (1, n)
        fractions = [s.layer_fraction for s in shards] if strategy is Strategy.PIPELINE_PARALLEL else None
        work = Workload(profile.counts, fmt, profile.architecture, 16, 1, 0, PLAN_OUTPUT_TOKENS)
        perf = estimate_performance(
            work,
            specs,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            link_gbps=device_link_bandwidth_gbps(fleet),
            efficiency=efficiency,
            stage_fractions=fractions,
        )
        notes = ["Decode speed: batch 1, 128 tokens from an empty context (EstimatePerformance's roofline)."]
        return perf.decode_tokens_per_second_per_sequence, notes + list(perf.assumptions)

    return speed
