"""The speed model plans use: the roofline of performance.py at batch 1, short context."""

from __future__ import annotations

from collections.abc import Sequence

from accelplan_server.core.hardware.accelerators import Fleet
from accelplan_server.core.hardware.specs import Arrangement, SpecResolver
from accelplan_server.core.model.footprint import ModelProfile
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.planning.roofline import DEFAULT_EFFICIENCY, Efficiency, Workload, roofline
from accelplan_server.core.planning.sharding import Layout, Lineup, SpeedModel, Strategy, device_link_bandwidth_gbps

PLAN_OUTPUT_TOKENS = 128
"""Plans quote decode speed for generating 128 tokens from an empty context (llama-bench's tg128)."""
_DECODE_NOTE = "Decode speed: batch 1, 128 tokens from an empty context (EstimatePerformance's roofline)."


def _arrange(lineup: Lineup, specs_of: SpecResolver, fmt: WeightFormat, tp: int, pp: int) -> Arrangement | str:
    """The lineup's devices arranged for the roofline, or why decode speed cannot be estimated."""
    specs = [specs_of(d) for d in lineup.devices]
    unknown = next((d for d, spec in zip(lineup.devices, specs, strict=True) if spec.bandwidth_gbps <= 0), None)
    if unknown is not None:
        return (
            f"Decode speed unknown: no memory bandwidth for a {unknown.type.name} device; "
            "set memory_bandwidth_gigabytes_per_second or sku."
        )
    return Arrangement.of(specs, fmt.quantization, tp, pp)


def roofline_speed(
    profile: ModelProfile,
    fmt: WeightFormat,
    fleet: Fleet,
    specs_of: SpecResolver,
    efficiency: Efficiency | None = None,
) -> SpeedModel:
    """A SpeedModel for plans of ``profile`` on ``fleet``."""
    efficiency = efficiency or DEFAULT_EFFICIENCY
    link_gbps = device_link_bandwidth_gbps(fleet)

    def speed(strategy: Strategy, lineup: Lineup, layouts: Sequence[Layout]) -> tuple[float | None, list[str]]:
        n = len(lineup)
        tp, pp = (n, 1) if strategy is Strategy.TENSOR_PARALLEL else (1, n)
        # Kept with the lineup: its devices are resolved and arranged once, not once per plan.
        key = (specs_of, fmt.quantization, tp, pp)
        devices = lineup.memo(key, lambda: _arrange(lineup, specs_of, fmt, tp, pp))
        if isinstance(devices, str):
            return None, [devices]
        fractions = [lay.layer_fraction for lay in layouts] if strategy is Strategy.PIPELINE_PARALLEL else None
        work = Workload(profile.counts, fmt, profile.architecture, 16, 1, 0, PLAN_OUTPUT_TOKENS)
        perf = roofline(work, devices, link_gbps=link_gbps, efficiency=efficiency, stage_fractions=fractions)
        return perf.decode_tokens_per_second_per_sequence, [_DECODE_NOTE, *perf.assumptions]

    return speed
