"""Fits the speed model's calibration constants on the ``fit`` rows of the validation set.

The held-out rows (every third speed scenario per phase, chosen before any fitting:
scenarios.json ``_split``) are never read here. Rows with a ``not_fitted`` reason (2023
llama.cpp, with a host overhead before CUDA graphs that the model does not describe) are
left out of the fit too; they are still reported by bench/accuracy.py.

Fitted: each catalogue sku's decode MBU (skus with fit rows), and per engine group
(llama.cpp; server engines) the decode per-layer overhead, the KV-read efficiency,
the prefill MFU curve and the prefill per-layer overhead. The objective is the mean
absolute log error per phase (decode, prefill), summed; the search is a coordinate
descent over multiplicative steps, deterministic.

Run:  .venv/bin/python -m tests.validation.fit      (prints the constants to copy into
      core/planning/engines.py and data/accelerators.json, with the fit error)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.specs import DeviceSpecs
from accelplan_server.core.planning import engines
from accelplan_server.core.planning.engines import Engine, EngineProfile
from tests.validation import evaluate as ev

ENGINE_GROUPS = {
    "llama_cpp": (Engine.LLAMA_CPP,),
    "llama_cpp_metal": (Engine.LLAMA_CPP,),
    "server": (Engine.VLLM, Engine.TENSORRT_LLM, Engine.SGLANG),
}
"""Fitted groups; llama_cpp_metal is llama.cpp on Apple GPUs (engines.METAL_PROFILES)."""
FIELDS = (
    "decode_overhead_seconds_per_layer",
    "kv_read_efficiency",
    "prefill_attention_efficiency",
    "prefill_mfu_max",
    "prefill_half_tokens",
    "prefill_overhead_seconds_per_layer",
)
BOUNDS = {
    "decode_overhead_seconds_per_layer": (0.0, 500e-6),
    "kv_read_efficiency": (0.02, 1.0),
    "prefill_attention_efficiency": (0.02, 1.0),
    "prefill_mfu_max": (0.05, 2.0),
    "prefill_half_tokens": (0.0, 4096.0),
    "prefill_overhead_seconds_per_layer": (0.0, 2e-3),
    "mbu": (0.2, 0.95),
}
"""Search ranges. prefill_mfu_max may pass 1: llama.cpp multiplies F16 with FP16 accumulation, which GeForce
cards run at twice the FP32-accumulate rate the catalogue lists."""


def fit_rows() -> tuple[list[tuple[dict[str, Any], float]], dict[str, Any], Catalog, BandwidthTable]:
    """(scenario, measured) for every fit-split speed row not marked not_fitted."""
    rows, doc = ev.load()
    catalog = load_catalog()
    table = BandwidthTable.from_catalog(catalog)
    chosen = [
        (s, ev.measured_value(s, rows[s["measurement"]]))
        for s in doc["scenarios"]
        if s.get("split") == "fit" and not s.get("not_fitted")
    ]
    return chosen, doc, catalog, table


START = {
    "llama_cpp_metal": engines.LLAMA_CPP_METAL._replace(
        decode_overhead_seconds_per_layer=50e-6,
        prefill_mfu_max=0.5,
        prefill_half_tokens=0,
        prefill_overhead_seconds_per_layer=0.0,
        kv_read_efficiency=1.0,
        prefill_attention_efficiency=1.0,
    ),
    "llama_cpp": engines.LLAMA_CPP._replace(
        decode_overhead_seconds_per_layer=50e-6,
        prefill_mfu_max=0.5,
        prefill_half_tokens=0,
        prefill_overhead_seconds_per_layer=0.0,
        kv_read_efficiency=1.0,
        prefill_attention_efficiency=1.0,
    ),
    "server": engines.SERVER._replace(
        decode_overhead_seconds_per_layer=50e-6,
        prefill_mfu_max=0.5,
        prefill_half_tokens=0,
        prefill_overhead_seconds_per_layer=0.0,
        kv_read_efficiency=1.0,
        prefill_attention_efficiency=1.0,
    ),
}
"""Where the search starts: the uncalibrated model's figures (50 us per layer, MFU 0.5, MBU 0.8), so a rerun
prints the same constants whatever engines.py holds."""


class Model:
    """The constants being fitted, applied to accelplan's own roofline."""

    def __init__(self, catalog: Catalog) -> None:
        self.profiles = dict(START)
        self.mbu: dict[str, float] = {}
        self.catalog = catalog

    def apply(self) -> None:
        for group, members in ENGINE_GROUPS.items():
            table = engines.METAL_PROFILES if group == "llama_cpp_metal" else engines.PROFILES
            for e in members:
                table[e] = self.profiles[group]._replace(name=table[e].name)


def predictor(doc: dict[str, Any], catalog: Catalog, table: BandwidthTable, model: Model) -> Callable[..., float]:
    original = ev.device_specs

    def specs(s: dict[str, Any], d: dict[str, Any], c: Catalog, t: BandwidthTable) -> DeviceSpecs:
        spec = original(s, d, c, t)
        mbu = model.mbu.get(s["device"])
        return dataclasses.replace(spec, decode_mbu=mbu) if mbu else spec

    def predict(s: dict[str, Any]) -> float:
        ev.device_specs = specs  # type: ignore[assignment]
        try:
            model.apply()
            arch = ev.architecture(s, doc, catalog)
            return ev.predict_speed(ev.performance(s, doc, catalog, table, arch), s)
        finally:
            ev.device_specs = original  # type: ignore[assignment]

    return predict


def loss(rows: list[tuple[dict[str, Any], float]], predict: Callable[[dict[str, Any]], float]) -> float:
    """Sum over phases of the mean absolute log error."""
    by_phase: dict[str, list[float]] = {}
    for s, measured in rows:
        by_phase.setdefault(ev.SPEED_METRICS[s["metric"]], []).append(abs(math.log(predict(s) / measured)))
    return sum(sum(v) / len(v) for v in by_phase.values())


def _clamp(name: str, value: float) -> float:
    lo, hi = BOUNDS[name]
    return min(hi, max(lo, value))


def fit(rounds: int = 6) -> tuple[Model, float]:
    """Coordinate descent over the constants; returns the model and its fit loss."""
    rows, doc, catalog, table = fit_rows()
    model = Model(catalog)
    skus = sorted({s["device"] for s, _ in rows if catalog.accelerator(s["device"]) is not None})
    model.mbu = {k: 0.8 for k in skus}
    predict = predictor(doc, catalog, table, model)
    best = loss(rows, predict)
    steps = (1.6, 1.25, 1.1, 1.04)
    for _ in range(rounds):
        for step in steps:
            for sku in skus:
                for factor in (step, 1 / step):
                    old = model.mbu[sku]
                    model.mbu[sku] = _clamp("mbu", old * factor)
                    trial = loss(rows, predict)
                    if trial < best - 1e-9:
                        best = trial
                    else:
                        model.mbu[sku] = old
            for group in ENGINE_GROUPS:
                for name in FIELDS:
                    for factor in (step, 1 / step):
                        old_profile = model.profiles[group]
                        value = getattr(old_profile, name)
                        candidate = value * factor if value else (BOUNDS[name][1] / 64 if factor > 1 else 0.0)
                        candidate = _clamp(name, candidate)
                        if name == "prefill_half_tokens":
                            candidate = round(candidate)
                        model.profiles[group] = old_profile._replace(**{name: candidate})
                        trial = loss(rows, predict)
                        if trial < best - 1e-9:
                            best = trial
                        else:
                            model.profiles[group] = old_profile
    return model, best


def report(model: Model, best: float) -> str:
    lines = [f"fit loss (sum over phases of mean |ln(pred/measured)|): {best:.4f}", "decode MBU per sku:"]
    lines += [f"  {sku}: {v:.3f}" for sku, v in sorted(model.mbu.items())]
    for group, p in model.profiles.items():
        lines.append(f"{group}:")
        lines += [f"  {name} = {getattr(p, name):.6g}" for name in FIELDS]
    return "\n".join(lines)


def main() -> None:
    import sys

    saved: dict[Engine, EngineProfile] = dict(engines.PROFILES)
    saved_metal = dict(engines.METAL_PROFILES)
    try:
        model, best = fit()
        print(report(model, best))
        if "-v" in sys.argv:
            rows, doc, catalog, table = fit_rows()
            predict = predictor(doc, catalog, table, model)
            for s, measured in rows:
                print(f"  {s['measurement']:60} {s['metric']:26} {predict(s) / measured - 1:+7.1%}")
    finally:
        engines.PROFILES.clear()
        engines.PROFILES.update(saved)
        engines.METAL_PROFILES.clear()
        engines.METAL_PROFILES.update(saved_metal)


if __name__ == "__main__":
    main()
