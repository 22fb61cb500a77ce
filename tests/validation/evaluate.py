"""Reproduces each validation scenario with accelplan's core and compares it with the measurement.

Used by tests/validation/test_validation.py (bounds) and bench/accuracy.py (the table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.core.hardware.accelerators import Accelerator
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.specs import DeviceSpecs, resolve
from accelplan_server.core.memory.serving import ServingShape, estimate_capacity, estimate_serving_memory
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.planning.engines import Engine
from accelplan_server.core.planning.roofline import Performance, Workload, estimate_performance
from accelplan_server.core.quantization import from_name

HERE = Path(__file__).parent
GIB = 2**30


@dataclass(frozen=True)
class Result:
    """One scenario's prediction against its measurement."""

    measurement: str
    metric: str
    measured: float
    predicted: float
    bound: float
    why: str
    bound_reason: str
    source: str
    phase: str = "memory"
    """memory, decode or prefill."""
    split: str = ""
    """fit or held_out (speed rows; chosen before fitting, see scenarios.json _split)."""
    batch_size: int = 1
    """Sequences decoded together."""

    @property
    def error(self) -> float:
        """Signed relative error of the prediction."""
        return self.predicted / self.measured - 1


def load() -> tuple[dict[str, Any], dict[str, Any]]:
    """(measurements by id, scenarios document)."""
    raw = json.loads((HERE / "measurements.json").read_text())
    rows = {r["id"]: r for kind in ("memory", "decode", "prefill", "throughput") for r in raw.get(kind, [])}
    return rows, json.loads((HERE / "scenarios.json").read_text())


def architecture(s: dict[str, Any], doc: dict[str, Any], catalog: Catalog) -> Architecture:
    """The scenario's architecture: a catalogue model's or an inline config."""
    model = s["model"]
    if "model_id" in model:
        config = catalog.model(model["model_id"]).architecture
        assert config is not None
        return Architecture.from_config(config)
    return Architecture.from_config(doc["architectures"][model["architecture"]]["config"])


def weight_format(s: dict[str, Any]) -> WeightFormat:
    """The scenario's weight storage."""
    return WeightFormat(
        from_name(s["quantization"]),
        s.get("group_size", 128),
        s.get("symmetric", False),
        s.get("quantize_embeddings", False),
    )


def device_specs(s: dict[str, Any], doc: dict[str, Any], catalog: Catalog, table: BandwidthTable) -> DeviceSpecs:
    """The scenario's device: a catalogue sku, or an inline device with its source."""
    key = s["device"]
    sku = catalog.accelerator(key)
    if sku is not None:
        return resolve(
            Accelerator(
                sku.type, sku.memory_bytes or GIB, sku=sku.sku, memory_bandwidth_gbps=sku.memory_bandwidth_gbps
            ),
            catalog,
            table,
        )
    inline = doc["devices"][key]
    from accelplan_server.core.hardware.accelerators import AcceleratorType

    return resolve(
        Accelerator(
            AcceleratorType.CUDA_GPU,
            int(inline["memory_gib"] * GIB),
            memory_bandwidth_gbps=float(inline["memory_bandwidth_gb_s"]),
        ),
        catalog,
        table,
    )


def measured_value(s: dict[str, Any], row: dict[str, Any]) -> float:
    """The number the source reports for the scenario's metric."""
    rep = row.get("reported", {})
    metric = s["metric"]
    if metric == "weights_gib":
        return float(rep["weights_gib"])
    if metric == "kv_cache_gib":
        return float(rep["kv_cache_gib"])
    if metric == "kv_cache_tokens":
        return float(rep["kv_cache_tokens"] or rep["gpu_blocks"] * (rep.get("block_size") or 16))
    if metric == "kv_cache_tokens_from_k_size":
        return float(rep["kv_cache_tokens"])
    if metric == "decode_tokens_per_second":
        return float(row["tokens_per_second"])
    if metric == "prefill_tokens_per_second":
        return float(row["prompt_tokens_per_second"])
    if metric == "time_to_first_token_ms":
        return float(row["ttft_ms"])
    if metric == "inter_token_latency_ms":
        return float(row["itl_ms"])
    if metric == "output_tokens_per_second":
        return float(row["value"])
    raise ValueError(metric)


SPEED_METRICS = {
    "decode_tokens_per_second": "decode",
    "inter_token_latency_ms": "decode",
    "output_tokens_per_second": "decode",
    "prefill_tokens_per_second": "prefill",
    "time_to_first_token_ms": "prefill",
}
"""Speed metrics and the phase each measures."""

ENGINES = {
    "llama_cpp": Engine.LLAMA_CPP,
    "vllm": Engine.VLLM,
    "tensorrt_llm": Engine.TENSORRT_LLM,
    "sglang": Engine.SGLANG,
}


def performance(
    s: dict[str, Any], doc: dict[str, Any], catalog: Catalog, table: BandwidthTable, arch: Architecture
) -> Performance:
    """accelplan's roofline for a speed scenario."""
    tp = s.get("tensor_parallel_size", 1)
    pp = s.get("pipeline_parallel_size", 1)
    spec = device_specs(s, doc, catalog, table)
    sku = catalog.accelerator(s["device"])
    link = sku.interconnect_gbps if sku is not None and tp > 1 else 0.0
    work = Workload(
        arch.parameters,
        weight_format(s),
        arch,
        16,
        s.get("batch_size", 1),
        s.get("prompt_tokens", 0),
        s.get("output_tokens", 128),
        engine=ENGINES[s.get("engine", "llama_cpp")],
    )
    return estimate_performance(work, [spec] * (tp * pp), tensor_parallel=tp, pipeline_parallel=pp, link_gbps=link)


def predict_speed(perf: Performance, s: dict[str, Any]) -> float:
    """accelplan's value for a speed metric."""
    metric = s["metric"]
    if metric == "decode_tokens_per_second":
        return perf.decode_tokens_per_second_per_sequence
    if metric == "inter_token_latency_ms":
        return perf.decode_seconds_per_token * 1e3
    if metric == "prefill_tokens_per_second":
        return s["prompt_tokens"] * s.get("batch_size", 1) / perf.prefill_seconds
    if metric == "time_to_first_token_ms":
        return perf.prefill_seconds * 1e3
    if metric == "output_tokens_per_second":
        out = s["output_tokens"]
        return s["batch_size"] * out / (perf.prefill_seconds + out * perf.decode_seconds_per_token)
    raise ValueError(metric)


def predict(
    s: dict[str, Any], row: dict[str, Any], doc: dict[str, Any], catalog: Catalog, table: BandwidthTable
) -> float:
    """accelplan's value for the scenario's metric."""
    arch = architecture(s, doc, catalog)
    fmt = weight_format(s)
    tp = s.get("tensor_parallel_size", 1)
    metric = s["metric"]
    rep = row.get("reported", {})
    if metric == "weights_gib":
        return estimate_serving_memory(arch, fmt, ServingShape(tensor_parallel=tp)).weights_bytes / GIB
    if metric == "kv_cache_gib":
        shape = ServingShape(tensor_parallel=tp, max_batched_tokens=s["max_batched_tokens"])
        cap = estimate_capacity(arch, fmt, shape, int(s["device_memory_gib"] * GIB), s["gpu_memory_utilization"])
        return cap.kv_budget_bytes / GIB
    if metric in ("kv_cache_tokens", "kv_cache_tokens_from_k_size"):
        kv_bytes = (
            2 * rep["k_size_printed_gb"] if metric == "kv_cache_tokens_from_k_size" else rep["kv_cache_gib"]
        ) * GIB
        per_token = arch.num_hidden_layers * arch.kv_elements_per_token_per_layer_sharded(tp) * 2
        return kv_bytes / per_token
    if metric in SPEED_METRICS:
        return predict_speed(performance(s, doc, catalog, table, arch), s)
    raise ValueError(metric)


def evaluate() -> list[Result]:
    """Every scenario's prediction against its measurement."""
    rows, doc = load()
    catalog = load_catalog()
    table = BandwidthTable.from_catalog(catalog)
    results = []
    for s in doc["scenarios"]:
        row = rows[s["measurement"]]
        results.append(
            Result(
                s["measurement"],
                s["metric"],
                measured_value(s, row),
                predict(s, row, doc, catalog, table),
                s["bound"],
                s.get("why", ""),
                s.get("bound_reason", ""),
                row["source"],
                SPEED_METRICS.get(s["metric"], "memory"),
                s.get("split", ""),
                s.get("batch_size", 1),
            )
        )
    return results


if __name__ == "__main__":
    for r in evaluate():
        flag = "ok " if abs(r.error) <= r.bound else "OUT"
        print(
            f"{flag} {r.phase[:3]} {r.split[:4]:4} {r.measurement:58} {r.metric:26} "
            f"measured {r.measured:10.2f} predicted {r.predicted:10.2f}"
            f" {r.error:+7.1%} (bound {r.bound:.0%})"
        )
