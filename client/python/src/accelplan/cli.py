"""The ``accelplan`` command: run the server, or ask a running one.

Every subcommand except ``serve`` and ``extender`` talks to a server over gRPC (``--server``)
and prints a readable table, or proto3 JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from accelplan import local_commands
from accelplan.client import PlannerClient, PlannerError
from accelplan.cliopts import (
    QUANT_CHOICES,
    add_global_options,
    add_global_options_to_subcommands,
    connect,
    not_found_text,
    resolve_links,
)
from accelplan.fleetspec import parse_count, parse_size
from accelplan.sources import resolve_fleet, resolve_model
from accelplan.v1 import (
    cost_pb2,
    hardware_pb2,
    models_pb2,
    planning_pb2,
    quantization_pb2,
    scheduling_pb2,
    training_pb2,
)


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def _level(value: int) -> str:
    names = {1: "FP32", 2: "FP16", 3: "BF16", 4: "INT8", 5: "INT4", 6: "FP8"}
    return names.get(value, _enum_name(quantization_pb2.QuantizationLevel, value, "QUANTIZATION_LEVEL_"))


def gib(n: int) -> str:
    """Bytes as GiB with one decimal."""
    return f"{n / 2**30:,.1f} GiB"


UNKNOWN = "-"
"""How a table shows a figure the catalogue does not know (never 0)."""


def known(value: float, show: Callable[[Any], str]) -> str:
    """``show(value)``, or ``-`` when the value is 0 (proto3's 'not set': unknown)."""
    return show(value) if value else UNKNOWN


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Left-aligned columns."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _model(args: argparse.Namespace) -> models_pb2.ModelSpec:
    if args.model_id:
        return models_pb2.ModelSpec(model_id=args.model_id)
    if getattr(args, "model", None):
        return resolve_model(args.model)
    return models_pb2.ModelSpec(parameter_count=parse_count(args.params))


def _quant(name: str) -> quantization_pb2.QuantizationLevel.ValueType:
    level = quantization_pb2.QuantizationLevel
    aliases = {"fp32": "NONE", "fp16": "FLOAT16", "bf16": "BFLOAT16", "fp8": "FP8"}
    key = name.strip().upper()
    key = aliases.get(key.lower(), key).removeprefix("QUANTIZATION_LEVEL_")
    try:
        return level.Value(f"QUANTIZATION_LEVEL_{key}")
    except ValueError:
        raise ValueError(f"unknown quantization {name!r}; use fp32, fp16, bf16, int8, int4 or fp8") from None


def _assumptions(msg: Any) -> str:
    return "".join(f"\n  - {a}" for a in msg.assumptions)


def cmd_quant(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """List levels, or resolve one."""
    if args.level is None:
        resp = client.list_quantization_levels()
        rows = [(_level(i.level), i.bits_per_param, f"{i.memory_reduction_factor:g}x") for i in resp.levels]
        return resp, table(rows, ("LEVEL", "BITS", "REDUCTION"))
    req = quantization_pb2.ResolveQuantizationLevelRequest()
    if args.level.isdigit():
        req.bits = int(args.level)
    else:
        req.name = args.level
    info = client.resolve_quantization_level(req)
    return (
        info,
        f"{info.display_name}: {info.bits_per_param} bits per parameter, "
        f"{info.memory_reduction_factor:g}x smaller than FP32",
    )


def cmd_estimate(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Inference memory."""
    e = client.estimate_memory(
        planning_pb2.EstimateMemoryRequest(
            model=_model(args),
            quantization=_quant(args.quant),
            context_length=args.context,
            batch_size=args.batch,
            kv_cache_quantization=_quant(args.kv_quant)
            if args.kv_quant
            else quantization_pb2.QUANTIZATION_LEVEL_UNSPECIFIED,
            tensor_parallel_size=args.tp,
        )
    )
    rows = [
        ("weights", gib(e.weights_bytes), e.weights_bytes),
        ("kv cache", gib(e.kv_cache_bytes), e.kv_cache_bytes),
        ("activations", gib(e.activation_bytes), e.activation_bytes),
        ("overhead", gib(e.overhead_bytes), e.overhead_bytes),
        ("total", gib(e.total_bytes), e.total_bytes),
    ]
    head = f"{e.parameter_count:,} parameters ({e.active_parameter_count:,} active) at {_level(e.quantization)}\n"
    return e, head + table(rows, ("PART", "MEMORY", "BYTES")) + "\nassumptions:" + _assumptions(e)


def _fleet(args: argparse.Namespace) -> hardware_pb2.Fleet:
    return resolve_fleet(args.fleet or "", args.link)


def cmd_suggest(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Suggested precision."""
    s = client.suggest_quantization(
        planning_pb2.SuggestQuantizationRequest(model=_model(args), fleet=_fleet(args), consider_sharding=args.shard)
    )
    text = f"suggested: {_level(s.quantization)}\n{s.reason}"
    if s.HasField("assumed_plan"):
        text += "\n\nassumed plan:\n" + _plan_text(s.assumed_plan)
    return s, text


def _plan_text(p: planning_pb2.ShardingPlan) -> str:
    strategy = _enum_name(planning_pb2.ShardingStrategy, p.strategy, "SHARDING_STRATEGY_")
    speed = (
        f"{p.estimated_tokens_per_second:,.1f} tokens/s (batch 1)"
        if p.HasField("estimated_tokens_per_second")
        else "unknown"
    )
    lines = [
        f"strategy:      {strategy} over {p.device_count} device(s)",
        f"total memory:  {gib(p.total_memory_bytes)}",
        f"fits:          {'yes' if p.fits_in_memory else 'NO'}",
        f"decode speed:  {speed}",
        "",
    ]
    rows = [
        (
            s.shard_id,
            f"{s.first_layer}-{s.last_layer}",
            gib(s.memory_bytes),
            _enum_name(hardware_pb2.AcceleratorType, s.accelerator.type, "ACCELERATOR_TYPE_"),
            s.accelerator_index if s.HasField("accelerator_index") else "-",
            gib(s.accelerator.memory_bytes),
        )
        for s in p.shards
    ]
    body = table(rows, ("SHARD", "LAYERS", "MEMORY", "DEVICE", "FLEET#", "DEVICE MEMORY"))
    return "\n".join(lines) + body + "\nassumptions:" + _assumptions(p)


def cmd_plan(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Sharding plan."""
    p = client.plan_sharding(
        planning_pb2.PlanShardingRequest(model=_model(args), quantization=_quant(args.quant), fleet=_fleet(args))
    )
    return p, _plan_text(p)


def cmd_train(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Fine-tuning memory."""
    req = training_pb2.EstimateTrainingMemoryRequest(
        model=_model(args),
        method=training_pb2.TrainingMethod.Value("TRAINING_METHOD_" + args.method.upper().replace("-", "_")),
        target=training_pb2.TrainingTarget.Value("TRAINING_TARGET_" + args.target.upper()),
        qlora_bits=args.qlora_bits,
        micro_batch_size=args.batch,
        sequence_length=args.seq_len,
        optimizer=training_pb2.Optimizer.Value("OPTIMIZER_" + args.optimizer.upper().replace("-", "_"))
        if args.optimizer
        else training_pb2.OPTIMIZER_UNSPECIFIED,
        zero_stage=args.zero,
        fsdp=args.fsdp,
        data_parallel_size=args.dp,
        activation_recomputation=training_pb2.ActivationRecomputation.Value(
            "ACTIVATION_RECOMPUTATION_" + args.recompute.upper()
        )
        if args.recompute
        else training_pb2.ACTIVATION_RECOMPUTATION_UNSPECIFIED,
        tensor_parallel_size=args.tp,
        pure_bf16=args.pure_bf16,
        optimizer_in_backward=args.optimizer_in_backward,
        offload_optimizer=args.offload_optimizer,
        offload_parameters=args.offload_parameters,
    )
    e = client.estimate_training_memory(req)
    rows = [
        ("model", gib(e.model_bytes)),
        ("optimizer", gib(e.optimizer_bytes)),
        ("activations", gib(e.activation_bytes)),
        ("total", gib(e.total_bytes)),
    ]
    if e.host_memory_bytes:
        rows.append(("host memory (not in total)", gib(e.host_memory_bytes)))
    return e, table(rows, ("PART", "MEMORY")) + "\nassumptions:" + _assumptions(e)


def cmd_cost(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Cloud instances, cheapest first."""
    r = client.recommend_instances(
        cost_pb2.RecommendInstancesRequest(
            model=_model(args), quantization=_quant(args.quant), provider=args.provider or "", page_size=args.limit
        )
    )
    rows = [
        (
            x.instance.provider,
            x.instance.name,
            f"{x.instance.accelerator_count}x {x.instance.accelerator_name}",
            gib(x.instance.total_accelerator_memory_bytes),
            gib(x.headroom_bytes),
            f"${x.instance.price_per_hour_usd:,.2f}",
        )
        for x in r.recommendations
    ]
    notes = "\nassumptions:" + _assumptions(r) if r.assumptions else ""
    if not rows:
        return r, "no instance in the price list holds this model" + notes
    need = gib(r.recommendations[0].required_memory_bytes)
    return r, f"model needs {need}\n" + table(
        rows, ("PROVIDER", "INSTANCE", "ACCELERATORS", "MEMORY", "HEADROOM", "PER HOUR")
    ) + notes


def cmd_capacity(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Longest context and most sequences that fit."""
    r = client.call(
        "EstimateCapacity",
        planning_pb2.EstimateCapacityRequest(
            model=_model(args),
            quantization=_quant(args.quant),
            fleet=_fleet(args),
            tensor_parallel_size=args.tp,
            gpu_memory_utilization=args.utilization,
            context_length=args.context,
            batch_size=args.batch,
            kv_cache_quantization=_quant(args.kv_quant)
            if args.kv_quant
            else quantization_pb2.QUANTIZATION_LEVEL_UNSPECIFIED,
        ),
    )
    assert isinstance(r, planning_pb2.EstimateCapacityResponse)
    lines = [
        f"tensor parallel:        {r.tensor_parallel_size}",
        f"usable per device:      {gib(r.usable_memory_bytes)}",
        f"KV budget per device:   {gib(r.kv_cache_budget_bytes)} ({r.kv_cache_tokens:,} tokens)",
        f"longest context:        {r.max_context_length:,} tokens for {args.batch or 1} sequence(s)",
        f"most sequences:         {r.max_concurrent_sequences:,} of {args.context or 4096} tokens",
    ]
    return r, "\n".join(lines) + "\nassumptions:" + _assumptions(r)


def cmd_perf(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Roofline latency and throughput."""
    fleet = _fleet(args)
    r = client.call(
        "EstimatePerformance",
        planning_pb2.EstimatePerformanceRequest(
            model=_model(args),
            quantization=_quant(args.quant),
            fleet=fleet,
            tensor_parallel_size=args.tp,
            pipeline_parallel_size=args.pp,
            batch_size=args.batch,
            prompt_tokens=args.prompt,
            output_tokens=args.output,
        ),
    )
    assert isinstance(r, planning_pb2.EstimatePerformanceResponse)
    bound = _enum_name(planning_pb2.PerformanceBound, r.bound, "PERFORMANCE_BOUND_")
    lines = [
        f"time to first token:    {r.prefill_seconds * 1e3:,.1f} ms",
        f"per output token:       {r.decode_seconds_per_token * 1e3:,.2f} ms ({bound.lower()} bound)",
        f"decode per sequence:    {r.decode_tokens_per_second_per_sequence:,.1f} tokens/s",
        f"decode, whole batch:    {r.decode_tokens_per_second_total:,.1f} tokens/s",
        f"end to end:             {r.end_to_end_seconds:,.2f} s",
        f"fits in memory:         {'yes' if r.fits_in_memory else 'NO'} "
        f"({gib(r.memory_per_device_bytes)} needed per device of {gib(r.device_memory_bytes)})",
        f"devices used:           {r.devices_used} of {sum(not a.unavailable for a in fleet.accelerators)}",
    ]
    return r, "\n".join(lines) + "\nassumptions:" + _assumptions(r)


def cmd_hardware(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """The hardware catalogue."""
    r = client.call("ListAcceleratorModels", hardware_pb2.ListAcceleratorModelsRequest(page_size=1000))
    assert isinstance(r, hardware_pb2.ListAcceleratorModelsResponse)
    rows = []
    for m in r.accelerator_models:
        peak = {p.precision: p.dense_teraflops for p in m.peaks}
        tflops = peak.get("bf16") or peak.get("fp16") or 0.0
        rows.append(
            (
                m.sku,
                m.name,
                known(m.memory_bytes, gib),
                known(m.memory_bandwidth_gigabytes_per_second, lambda v: f"{v:,.0f}"),
                known(tflops, lambda v: f"{v:,.0f}"),
                ",".join(_level(q) for q in m.supported_quantizations) or UNKNOWN,
            )
        )
    return r, table(rows, ("SKU", "NAME", "MEMORY", "GB/S", "16-BIT-TFLOPS", "QUANTIZATIONS"))


def _model_rows(models: Sequence[models_pb2.ModelInfo]) -> list[tuple[object, ...]]:
    return [
        (
            m.id,
            m.name,
            m.family,
            f"{m.parameter_count / 1e9:,.2f}B",
            f"{m.active_parameter_count / 1e9:,.2f}B",
            m.max_context_length_tokens,
        )
        for m in models
    ]


def cmd_models(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """The catalogue, or one model."""
    if args.model_id:
        m = client.get_model(args.model_id)
        return m, table(
            _model_rows([m]), ("ID", "NAME", "FAMILY", "PARAMS", "ACTIVE", "CONTEXT")
        ) + f"\nsource: {m.source_url}"
    r = client.list_models(models_pb2.ListModelsRequest(family=args.family or "", page_size=1000))
    return r, table(_model_rows(r.models), ("ID", "NAME", "FAMILY", "PARAMS", "ACTIVE", "CONTEXT"))


def cmd_compatible(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Models that fit a budget."""
    r = client.find_compatible_models(
        models_pb2.FindCompatibleModelsRequest(
            quantization=_quant(args.quant), available_memory_bytes=parse_size(args.memory), page_size=1000
        )
    )
    fits = sorted(r.models, key=lambda c: (-c.required_memory_bytes, c.model.id))
    rows = [(c.model.id, gib(c.required_memory_bytes), gib(c.headroom_bytes)) for c in fits]
    more = "\n(more models fit: the first page is shown)" if r.next_page_token else ""
    return r, table(rows, ("MODEL", "NEEDS", "HEADROOM")) + more if rows else "no catalogue model fits"


def cmd_filter(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """Devices meeting a requirement."""
    kind = hardware_pb2.AcceleratorRequirementKind.Value(
        "ACCELERATOR_REQUIREMENT_KIND_" + args.require.upper().replace("-", "_")
    )
    r = client.filter_accelerators(
        hardware_pb2.FilterAcceleratorsRequest(
            fleet=_fleet(args), requirement=hardware_pb2.AcceleratorRequirement(kind=kind, min_tpu_chips=args.min_chips)
        )
    )
    rows = [
        (
            m.index,
            _enum_name(hardware_pb2.AcceleratorType, m.accelerator.type, "ACCELERATOR_TYPE_"),
            gib(m.capabilities.memory_bytes),
            _enum_name(hardware_pb2.AcceleratorFamily, m.capabilities.family, "ACCELERATOR_FAMILY_"),
            m.capabilities.rank,
            _level(m.capabilities.preferred_quantization),
            ",".join(_level(q) for q in m.capabilities.supported_quantizations),
        )
        for m in r.matches
    ]
    return r, table(rows, ("FLEET#", "TYPE", "MEMORY", "FAMILY", "RANK", "PREFERS", "SUPPORTS"))


def _workload(args: argparse.Namespace) -> scheduling_pb2.Workload:
    w = scheduling_pb2.Workload(
        model=_model(args), context_length=args.context, concurrency=args.concurrency, prompt_tokens=args.prompt
    )
    if args.quant:
        w.quantization = _quant(args.quant)
    if args.kv_quant:
        w.kv_cache_quantization = _quant(args.kv_quant)
    if args.min_tps is not None:
        w.min_decode_tokens_per_second = args.min_tps
    if args.max_ttft is not None:
        w.max_time_to_first_token_seconds = args.max_ttft
    return w


def _read_nodes(path: str) -> list[scheduling_pb2.NodeInventory]:
    """Nodes from `kubectl get nodes -o json` output, or a JSON list of {"name", "labels", "price_per_hour_usd"}."""
    with open(path, encoding="utf-8") if path != "-" else sys.stdin as f:
        doc = json.load(f)
    nodes = []
    items = doc.get("items", []) if isinstance(doc, dict) else doc
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"{path}: each node must be a JSON object")
        meta = item.get("metadata")
        if isinstance(meta, dict):  # a Kubernetes Node
            nodes.append(scheduling_pb2.NodeInventory(name=meta.get("name", ""), labels=meta.get("labels") or {}))
            continue
        node = scheduling_pb2.NodeInventory(name=item.get("name", ""), labels=item.get("labels") or {})
        if item.get("price_per_hour_usd") is not None:
            node.price_per_hour_usd = float(item["price_per_hour_usd"])
        nodes.append(node)
    return nodes


def cmd_rank(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """RankNodes over nodes read from a file."""
    r = client.rank_nodes(
        scheduling_pb2.RankNodesRequest(
            workload=_workload(args),
            nodes=_read_nodes(args.nodes),
            devices_per_replica=args.devices,
            policy=scheduling_pb2.PlacementPolicy.Value(f"PLACEMENT_POLICY_{args.policy.upper().replace('-', '_')}"),
            top_k=args.top,
        )
    )
    rows = [
        (
            v.node_name,
            "yes" if v.feasible else ("never" if v.unresolvable else "no"),
            v.score,
            f"{v.device_count}" if v.feasible else "",
            _level(v.quantization) if v.quantization else "",
            f"{v.decode_tokens_per_second:,.1f}" if v.decode_tokens_per_second else "",
            v.reason,
        )
        for v in r.verdicts
    ]
    head = f"{r.feasible_count} of {len(r.verdicts)} nodes fit ({r.shape_count} device shapes)\n"
    return r, head + table(rows, ("NODE", "FITS", "SCORE", "DEVICES", "PRECISION", "TOK/S", "REASON"))


def cmd_right_size(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """RightSize over the catalogue (or --sku)."""
    r = client.right_size(
        scheduling_pb2.RightSizeRequest(
            workload=_workload(args),
            skus=args.sku,
            max_devices=args.max_devices,
            objective=scheduling_pb2.RightSizeObjective.Value(
                f"RIGHT_SIZE_OBJECTIVE_{args.objective.upper().replace('-', '_')}"
            ),
            top_k=args.top,
        )
    )
    rows = [
        (
            v.sku,
            v.device_count,
            f"{v.tensor_parallel_size}x{v.pipeline_parallel_size}",
            _level(v.quantization),
            gib(v.memory_per_device_bytes),
            f"{v.decode_tokens_per_second:,.1f}",
            f"{v.time_to_first_token_seconds * 1e3:,.0f}",
            f"{v.cost_per_hour_usd:,.2f}" if v.HasField("cost_per_hour_usd") else "",
            f"{v.cost_per_million_tokens_usd:,.2f}" if v.HasField("cost_per_million_tokens_usd") else "",
            v.artifacts.slurm_gres,
        )
        for v in r.variants
    ]
    text = table(
        rows, ("SKU", "DEVICES", "TPxPP", "PRECISION", "MEM/DEVICE", "TOK/S", "TTFT MS", "$/HOUR", "$/M TOK", "GRES")
    )
    if r.variants:
        best = r.variants[0].artifacts
        text += "\nbest: vllm serve MODEL " + " ".join(best.vllm_args)
        text += "\n      resources.limits " + json.dumps(dict(best.kubernetes_resource_limits))
        text += "; nodeSelector " + json.dumps(dict(best.kubernetes_node_selector))
    if r.rejected:
        text += "\nrejected:" + "".join(f"\n  - {j.sku}: {j.reason}" for j in r.rejected)
    return r, text


def _add_workload(p: argparse.ArgumentParser) -> None:
    _add_model(p)
    p.add_argument("--quant", help="weight precision (default: the widest that fits)")
    p.add_argument("--context", type=int, default=0, help="tokens per sequence (default 4096)")
    p.add_argument("--concurrency", type=int, default=0, help="sequences served at once (default 1)")
    p.add_argument("--kv-quant", help="KV-cache precision (default 16-bit)")
    p.add_argument("--prompt", type=int, default=0, help="prompt tokens for time to first token (default 512)")
    p.add_argument("--min-tps", type=float, help="slowest acceptable decode tokens/s per sequence")
    p.add_argument("--max-ttft", type=float, help="longest acceptable time to first token, seconds")


def _add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model-id", help="catalogue model id, e.g. llama-3.1-70b (see `accelplan models`)")
    g.add_argument("--params", help="parameter count with its scale, e.g. 70B or 7000M (a bare 7 is refused)")
    g.add_argument("--model", metavar="@PATH", help="a model file or folder, inspected (see `accelplan inspect`)")


def _add_fleet(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--fleet",
        required=required,
        help="devices, e.g. '8xh100-sxm', '8xcuda:80GiB' or 'tpu-v5p:4chips,cpu:512GiB' (memory needs its unit); "
        "'detect' for this machine; @FILE for `accelplan detect --json` output",
    )
    p.add_argument(
        "--link",
        action="append",
        default=[],
        help="interconnect KIND[:GB/s], e.g. nvswitch:900 or nvlink:900GB/s; a bare KIND takes the catalogue's "
        "figure for the fleet's sku (repeatable; default: none)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="accelplan", description=__doc__.splitlines()[0])
    add_global_options(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    _serve_arguments(s)
    local_commands.add_parsers(sub)

    x = sub.add_parser("extender", help="run the Kubernetes scheduler extender (kube-scheduler's HTTP webhook)")
    _extender_arguments(x)

    q = sub.add_parser("quant", help="list quantization levels, or resolve one by name or bits")
    q.add_argument("level", nargs="?", help="a name (bf16, int4, QUANTIZATION_LEVEL_NONE) or bit width (8)")
    q.set_defaults(run=cmd_quant)

    e = sub.add_parser("estimate", help="inference memory for a model")
    _add_model(e)
    e.add_argument("--quant", required=True, help=f"weight precision: {QUANT_CHOICES}")
    e.add_argument("--context", type=int, default=0, help="tokens per sequence (default 4096)")
    e.add_argument("--batch", type=int, default=0, help="concurrent sequences (default 1)")
    e.add_argument("--kv-quant", help=f"KV-cache precision: {QUANT_CHOICES} (default 16-bit)")
    e.add_argument("--tp", type=int, default=0, help="tensor-parallel degree; figures per device (default 1)")
    e.set_defaults(run=cmd_estimate)

    cap = sub.add_parser("capacity", help="longest context and most sequences that fit a fleet")
    _add_model(cap)
    cap.add_argument("--quant", required=True, help=f"weight precision: {QUANT_CHOICES}")
    _add_fleet(cap, required=True)
    cap.add_argument("--tp", type=int, default=0, help="tensor-parallel degree (default: every device)")
    cap.add_argument("--utilization", type=float, default=0.0, help="share of memory to use, (0, 1] (default 0.9)")
    cap.add_argument(
        "--context", type=int, default=0, help="tokens per sequence for the concurrency answer (default 4096)"
    )
    cap.add_argument("--batch", type=int, default=0, help="sequences for the context answer (default 1)")
    cap.add_argument("--kv-quant", help=f"KV-cache precision: {QUANT_CHOICES} (default 16-bit)")
    cap.set_defaults(run=cmd_capacity)

    pf = sub.add_parser("perf", help="time to first token and decode speed (roofline)")
    _add_model(pf)
    pf.add_argument("--quant", required=True, help=f"weight precision: {QUANT_CHOICES}")
    _add_fleet(pf, required=True)
    pf.add_argument("--tp", type=int, default=0, help="tensor-parallel degree (default 1)")
    pf.add_argument("--pp", type=int, default=0, help="pipeline stages (default 1)")
    pf.add_argument("--batch", type=int, default=0, help="sequences decoded together (default 1)")
    pf.add_argument("--prompt", type=int, default=0, help="prompt tokens (default 512)")
    pf.add_argument("--output", type=int, default=0, help="output tokens (default 128)")
    pf.set_defaults(run=cmd_perf)

    hwp = sub.add_parser("hardware", help="the hardware catalogue (skus for --fleet)")
    hwp.set_defaults(run=cmd_hardware)

    g = sub.add_parser("suggest", help="the precision that fits a fleet")
    _add_model(g)
    _add_fleet(g, required=True)
    g.add_argument(
        "--shard", action="store_true", help="also consider sharding across a family's devices (default off)"
    )
    g.set_defaults(run=cmd_suggest)

    p = sub.add_parser("plan", help="plan sharding over a fleet")
    _add_model(p)
    p.add_argument("--quant", required=True, help=f"weight precision: {QUANT_CHOICES}")
    _add_fleet(p, required=True)
    p.set_defaults(run=cmd_plan)

    t = sub.add_parser("train", help="fine-tuning memory")
    _add_model(t)
    t.add_argument(
        "--method", required=True, choices=["full-fine-tune", "lora", "qlora", "prefix", "dpo", "rlhf", "distillation"]
    )
    t.add_argument("--target", default="gpu", choices=["gpu", "tpu", "gaudi", "cpu"], help="device kind (default gpu)")
    t.add_argument("--qlora-bits", type=int, default=0, help="QLoRA base-weight bits (default 4)")
    arch_only = t.add_argument_group("with an architecture (--model-id of a transformer; refused with --params)")
    arch_only.add_argument("--batch", type=int, default=0, help="micro-batch size per device (default 1)")
    arch_only.add_argument("--seq-len", type=int, default=0, help="tokens per sequence (default 2048)")
    arch_only.add_argument(
        "--optimizer",
        choices=["adamw", "adamw-8bit", "sgd", "paged-adamw-8bit", "paged-adamw"],
        help="optimizer (default adamw)",
    )
    arch_only.add_argument("--zero", type=int, default=0, help="ZeRO stage 0-3 (default 0)")
    arch_only.add_argument("--fsdp", action="store_true", help="FSDP full sharding, = ZeRO-3 (default off)")
    arch_only.add_argument("--dp", type=int, default=0, help="data-parallel ranks (default 1)")
    arch_only.add_argument(
        "--recompute", choices=["none", "selective", "full"], help="activation recomputation (default none)"
    )
    arch_only.add_argument("--tp", type=int, default=0, help="tensor-parallel degree (default 1)")
    arch_only.add_argument("--pure-bf16", action="store_true", help="BF16 everything, no FP32 master (default off)")
    arch_only.add_argument(
        "--optimizer-in-backward", action="store_true", help="step and free each gradient in backward (default off)"
    )
    arch_only.add_argument("--offload-optimizer", action="store_true", help="optimizer state in host memory")
    arch_only.add_argument("--offload-parameters", action="store_true", help="parameters in host memory (ZeRO-3)")
    t.set_defaults(run=cmd_train)

    c = sub.add_parser("cost", help="cloud instances that hold a model, cheapest first")
    _add_model(c)
    c.add_argument("--quant", required=True, help=f"weight precision: {QUANT_CHOICES}")
    c.add_argument("--provider", help="aws, gcp or azure (default: all)")
    c.add_argument("--limit", type=int, default=10, help="most instances to show, 1-100 (default 10)")
    c.set_defaults(run=cmd_cost)

    m = sub.add_parser("models", help="list the model catalogue, or show one model")
    m.add_argument("model_id", nargs="?", help="show this model")
    m.add_argument("--family", help="only this family (default: all)")
    m.set_defaults(run=cmd_models)

    k = sub.add_parser("compatible", help="catalogue models that fit a memory budget, most memory needed first")
    k.add_argument("--quant", required=True, help=f"weight precision: {QUANT_CHOICES}")
    k.add_argument("--memory", required=True, help="budget with its unit, e.g. 80GiB or 24GB")
    k.set_defaults(run=cmd_compatible)

    rk = sub.add_parser("rank", help="rank cluster nodes for a workload (SchedulerService.RankNodes)")
    _add_workload(rk)
    rk.add_argument(
        "--nodes", required=True, help="`kubectl get nodes -o json` output or a JSON node list ('-': stdin)"
    )
    rk.add_argument("--devices", type=int, default=0, help="devices per replica (default: the fewest that fit)")
    rk.add_argument("--policy", default="best-fit", choices=["best-fit", "most-headroom", "fastest", "cheapest"])
    rk.add_argument("--top", type=int, default=0, help="most nodes to show (default all)")
    rk.set_defaults(run=cmd_rank)

    rs = sub.add_parser("right-size", help="devices, counts and precisions that serve a workload, with artifacts")
    _add_workload(rs)
    rs.add_argument("--sku", action="append", default=[], help="only this catalogue sku (repeatable)")
    rs.add_argument("--max-devices", type=int, default=0, help="most devices per replica (default 8)")
    rs.add_argument("--objective", default="fewest-devices", choices=["fewest-devices", "lowest-cost", "fastest"])
    rs.add_argument("--top", type=int, default=0, help="most variants to show (default all)")
    rs.set_defaults(run=cmd_right_size)

    f = sub.add_parser("filter", help="fleet devices meeting a requirement")
    _add_fleet(f, required=True)
    f.add_argument(
        "--require",
        default="none",
        choices=["none", "gpu", "tpu", "gaudi", "aws-neuron", "gpu-or-tpu", "any-accelerator"],
        help="what a device must be (default none: every available device)",
    )
    f.add_argument("--min-chips", type=int, default=0, help="for --require tpu: fewest chips (default 1)")
    f.set_defaults(run=cmd_filter)
    add_global_options_to_subcommands(sub, skip=("serve", "extender", "detect", "inspect"))
    return parser


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from accelplan_server.runtime import flags as serve_cli
    except ImportError:  # client-only install: no server package
        parser.set_defaults(serve_unavailable=True)
        return
    serve_cli.add_arguments(parser)


def _serve(args: argparse.Namespace) -> int:
    if getattr(args, "serve_unavailable", False):
        print("accelplan: the server package (accelplan_server) is not installed", file=sys.stderr)
        return 2
    from accelplan_server.runtime import flags as serve_cli

    return serve_cli.run(args)


def _note(text: str) -> None:
    print(f"accelplan: note: {text}", file=sys.stderr)


def _extender_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        from accelplan_server.adapters.kubernetes import server as extender_cli
    except ImportError as e:  # client-only install, or without the extender's dependencies
        parser.set_defaults(extender_unavailable=str(e))
        return
    extender_cli.add_arguments(parser)


def _extender(args: argparse.Namespace) -> int:
    missing = getattr(args, "extender_unavailable", None)
    if missing:
        print(f"accelplan: the extender needs the server package and its extras: {missing}", file=sys.stderr)
        return 2
    from accelplan_server.adapters.kubernetes import server as extender_cli

    return extender_cli.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``accelplan`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if getattr(args, "local", None) is not None:  # detect, inspect: no server
        code: int = args.local(args)
        return code
    if args.command == "extender":
        return _extender(args)
    run: Callable[[PlannerClient, argparse.Namespace], tuple[Message, str]] = args.run
    try:
        with connect(args) as client:
            if getattr(args, "link", None):
                args.link = resolve_links(client, args.fleet or "", args.link, lambda note: _note(note))
            msg, text = run(client, args)
    except PlannerError as e:
        print(f"accelplan: {not_found_text(e) or e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    try:
        print(json_format.MessageToJson(msg) if args.json else text)
    except BrokenPipeError:  # `accelplan ... | head`: the reader left; not an error
        sys.stdout = None  # no flush at exit onto the closed pipe
    return 0


if __name__ == "__main__":
    sys.exit(main())
