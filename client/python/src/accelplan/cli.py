"""The ``accelplan`` command: run the server, or ask a running one.

Every subcommand except ``serve`` talks to a server over gRPC (``--server``)
and prints a readable table, or proto3 JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from accelplan.client import DEFAULT_TARGET, PlannerClient, PlannerError
from accelplan.fleetspec import parse_count, parse_fleet, parse_size
from accelplan.v1 import (
    cost_pb2,
    hardware_pb2,
    models_pb2,
    planning_pb2,
    quantization_pb2,
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
    return parse_fleet(args.fleet or "", args.link)


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
    )
    e = client.estimate_training_memory(req)
    rows = [
        ("model", gib(e.model_bytes)),
        ("optimizer", gib(e.optimizer_bytes)),
        ("activations", gib(e.activation_bytes)),
        ("total", gib(e.total_bytes)),
    ]
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
    if not rows:
        return r, "no instance in the price list holds this model"
    need = gib(r.recommendations[0].required_memory_bytes)
    return r, f"model needs {need}\n" + table(
        rows, ("PROVIDER", "INSTANCE", "ACCELERATORS", "MEMORY", "HEADROOM", "PER HOUR")
    )


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
    r = client.call(
        "EstimatePerformance",
        planning_pb2.EstimatePerformanceRequest(
            model=_model(args),
            quantization=_quant(args.quant),
            fleet=_fleet(args),
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
    ]
    return r, "\n".join(lines) + "\nassumptions:" + _assumptions(r)


def cmd_hardware(client: PlannerClient, args: argparse.Namespace) -> tuple[Message, str]:
    """The hardware catalogue."""
    r = client.call("ListAcceleratorModels", hardware_pb2.ListAcceleratorModelsRequest(page_size=1000))
    assert isinstance(r, hardware_pb2.ListAcceleratorModelsResponse)
    rows = []
    for m in r.accelerator_models:
        peak = {p.precision: p.dense_teraflops for p in m.peaks}
        rows.append(
            (
                m.sku,
                m.name,
                gib(m.memory_bytes),
                f"{m.memory_bandwidth_gigabytes_per_second:,.0f}",
                f"{peak.get('bf16', peak.get('fp16', 0)):,.0f}",
                ",".join(_level(q) for q in m.supported_quantizations),
            )
        )
    return r, table(rows, ("SKU", "NAME", "MEMORY", "GB/S", "BF16 TFLOPS", "QUANTIZATIONS"))


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
            quantization=_quant(args.quant), available_memory_bytes=parse_size(args.memory)
        )
    )
    rows = [(c.model.id, gib(c.required_memory_bytes), gib(c.headroom_bytes)) for c in r.models]
    return r, table(rows, ("MODEL", "NEEDS", "HEADROOM")) if rows else "no catalogue model fits"


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


def _add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model-id", help="catalogue model id, e.g. llama-3.1-70b (see `accelplan models`)")
    g.add_argument("--params", help="raw parameter count, e.g. 70B or 7000M")


def _add_fleet(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--fleet", required=required, help="devices, e.g. '8xcuda:80GiB' or 'tpu-v5p:4chips,cpu:512GiB'")
    p.add_argument("--link", action="append", default=[], help="interconnect KIND:GBPS, e.g. nvswitch:900 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="accelplan", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("ACCELPLAN_SERVER", DEFAULT_TARGET),
        help="server address host:port (default $ACCELPLAN_SERVER or %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the response as proto3 JSON")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline per call in seconds")
    parser.add_argument("--token", default=os.environ.get("ACCELPLAN_TOKEN"), help="bearer token ($ACCELPLAN_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    _serve_arguments(s)

    q = sub.add_parser("quant", help="list quantization levels, or resolve one by name or bits")
    q.add_argument("level", nargs="?", help="a name (bf16, int4, QUANTIZATION_LEVEL_NONE) or bit width (8)")
    q.set_defaults(run=cmd_quant)

    e = sub.add_parser("estimate", help="inference memory for a model")
    _add_model(e)
    e.add_argument("--quant", required=True, help="fp32, fp16, bf16, int8, int4 or fp8")
    e.add_argument("--context", type=int, default=0, help="tokens per sequence (default 4096)")
    e.add_argument("--batch", type=int, default=0, help="concurrent sequences (default 1)")
    e.add_argument("--kv-quant", help="KV-cache precision (default 16-bit)")
    e.add_argument("--tp", type=int, default=0, help="tensor-parallel degree; figures per device (default 1)")
    e.set_defaults(run=cmd_estimate)

    cap = sub.add_parser("capacity", help="longest context and most sequences that fit a fleet")
    _add_model(cap)
    cap.add_argument("--quant", required=True, help="fp32, fp16, bf16, int8, int4 or fp8")
    _add_fleet(cap, required=True)
    cap.add_argument("--tp", type=int, default=0, help="tensor-parallel degree (default: every device)")
    cap.add_argument("--utilization", type=float, default=0.0, help="share of memory to use (default 0.9)")
    cap.add_argument("--context", type=int, default=0, help="tokens per sequence for the concurrency answer")
    cap.add_argument("--batch", type=int, default=0, help="sequences for the context answer")
    cap.add_argument("--kv-quant", help="KV-cache precision (default 16-bit)")
    cap.set_defaults(run=cmd_capacity)

    pf = sub.add_parser("perf", help="time to first token and decode speed (roofline)")
    _add_model(pf)
    pf.add_argument("--quant", required=True, help="fp32, fp16, bf16, int8, int4 or fp8")
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
    _add_fleet(g, required=False)
    g.add_argument("--shard", action="store_true", help="also consider sharding across a family's devices")
    g.set_defaults(run=cmd_suggest)

    p = sub.add_parser("plan", help="plan sharding over a fleet")
    _add_model(p)
    p.add_argument("--quant", required=True, help="fp32, fp16, bf16, int8 or int4")
    _add_fleet(p, required=True)
    p.set_defaults(run=cmd_plan)

    t = sub.add_parser("train", help="fine-tuning memory")
    _add_model(t)
    t.add_argument(
        "--method", required=True, choices=["full-fine-tune", "lora", "qlora", "prefix", "dpo", "rlhf", "distillation"]
    )
    t.add_argument("--target", default="gpu", choices=["gpu", "tpu", "gaudi", "cpu"])
    t.add_argument("--qlora-bits", type=int, default=0, help="QLoRA base-weight bits (default 4)")
    t.set_defaults(run=cmd_train)

    c = sub.add_parser("cost", help="cloud instances that hold a model, cheapest first")
    _add_model(c)
    c.add_argument("--quant", required=True, help="fp32, fp16, bf16, int8 or int4")
    c.add_argument("--provider", help="aws, gcp or azure")
    c.add_argument("--limit", type=int, default=10, help="most instances to show (1-100)")
    c.set_defaults(run=cmd_cost)

    m = sub.add_parser("models", help="list the model catalogue, or show one model")
    m.add_argument("model_id", nargs="?", help="show this model")
    m.add_argument("--family", help="only this family")
    m.set_defaults(run=cmd_models)

    k = sub.add_parser("compatible", help="catalogue models that fit a memory budget")
    k.add_argument("--quant", required=True, help="fp32, fp16, bf16, int8 or int4")
    k.add_argument("--memory", required=True, help="budget, e.g. 80GiB")
    k.set_defaults(run=cmd_compatible)

    f = sub.add_parser("filter", help="fleet devices meeting a requirement")
    _add_fleet(f, required=True)
    f.add_argument(
        "--require",
        default="none",
        choices=["none", "gpu", "tpu", "gaudi", "aws-neuron", "gpu-or-tpu", "any-accelerator"],
    )
    f.add_argument("--min-chips", type=int, default=0, help="for --require tpu: fewest chips")
    f.set_defaults(run=cmd_filter)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``accelplan`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    run: Callable[[PlannerClient, argparse.Namespace], tuple[Message, str]] = args.run
    try:
        with PlannerClient(args.server, timeout=args.timeout, token=args.token) as client:
            msg, text = run(client, args)
    except PlannerError as e:
        print(f"accelplan: {e}", file=sys.stderr)
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
