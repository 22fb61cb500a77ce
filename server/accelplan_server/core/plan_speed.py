"""The speed model plans use: the roofline of performance.py at batch 1, short context."""

from __future__ import annotations

from collections.abc import Sequence

from accelplan_server.core.devices import DeviceSet, SpecResolver
from accelplan_server.core.footprint import ModelProfile
from accelplan_server.core.hardware import Fleet
from accelplan_server.core.performance import Efficiency, Workload, estimate_performance
from accelplan_server.core.sharding import Layout, Lineup, SpeedModel, Strategy, device_link_bandwidth_gbps
from accelplan_server.core.weights import WeightFormat

PLAN_OUTPUT_TOKENS = 128
"""Plans quote decode speed for generating 128 tokens from an empty context (llama-bench's tg128)."""


def roofline_speed(
    profile: ModelProfile,
    fmt: WeightFormat,
    fleet: Fleet,
    specs_of: SpecResolver,
    efficiency: Efficiency | None = None,
) -> SpeedModel:
    """A SpeedModel for plans of ``profile`` on ``fleet``."""
    efficiency = efficiency or Efficiency()

    def speed(strategy: Strategy, lineup: Lineup, layouts: Sequence[Layout]) -> tuple[float | None, list[str]]:
        # Kept with the lineup: a fleet's devices are resolved once, not once per plan.
        devices = lineup.memo(specs_of, lambda: DeviceSet.of([specs_of(d) for d in lineup.devices]))
        unknown = next((d for d in devices.distinct if d.bandwidth_gbps <= 0), None)
        if unknown is not None:
            kind = lineup.devices[next(i for i, d in enumerate(devices.specs) if d is unknown)].type.name
            return None, [
                f"Decode speed unknown: no memory bandwidth for a {kind} device; "
                "set memory_bandwidth_gigabytes_per_second or sku."
            ]
        n = len(lineup)
        tp, pp = (n, 1) if strategy is Strategy.TENSOR_PARALLEL else (1, n)
        fractions = [lay.layer_fraction for lay in layouts] if strategy is Strategy.PIPELINE_PARALLEL else None
        work = Workload(profile.counts, fmt, profile.architecture, 16, 1, 0, PLAN_OUTPUT_TOKENS)
        perf = estimate_performance(
            work,
            devices,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            link_gbps=device_link_bandwidth_gbps(fleet),
            efficiency=efficiency,
            stage_fractions=fractions,
        )
        notes = ["Decode speed: batch 1, 128 tokens from an empty context (EstimatePerformance's roofline)."]
        return perf.decode_tokens_per_second_per_sequence, notes + list(perf.assumptions)

    return speed
