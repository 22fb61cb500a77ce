"""A roofline model of LLM serving speed.

Decode: each step produces one token for each of ``batch`` sequences. A device
reads its share of the weights and of the KV cache and does its share of the
FLOPs; the step takes the longer of the two::

    t_memory  = bytes_read / (bandwidth * MBU)
    t_compute = 2 * active_params * batch / (peak_flops * MFU)     (+ attention FLOPs)

Tensor-parallel devices work at the same time and add two all-reduces per
layer; pipeline stages run one after another for a sequence. Prefill is the
prompt's FLOPs at the prefill MFU, or the weight reads (one per micro-batch) if
longer, plus a fixed cost per layer per micro-batch (engines.py).

Calibration (tests/validation, fit rows only): the weight-read utilisation is a
per-sku catalogue figure (DeviceSpecs.decode_mbu), falling back to
DEFAULT_DECODE_MBU; KV-cache reads run at the engine's kv_read_efficiency times
that; prefill MFU grows with the tokens per matrix multiply,
``mfu_max * n / (n + half_tokens)``, plus a fixed cost per layer per micro-batch.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Sequence
from functools import reduce
from itertools import repeat
from operator import add, mul, truediv
from typing import NamedTuple

from accelplan_server.core.hardware.specs import DEFAULT_DECODE_MBU, Arrangement, DeviceSpecs
from accelplan_server.core.memory.serving import kv_bytes_per_sequence
from accelplan_server.core.model.architecture import Architecture, ParameterCounts
from accelplan_server.core.model.weights import WeightFormat, bytes_read_per_token
from accelplan_server.core.planning.engines import Engine, EngineProfile, profile

DEFAULT_DECODE_MFU = 0.5
"""Share of dense peak FLOPS sustained by decode-step matrix multiplies."""
ALLREDUCE_LATENCY_SECONDS = 10e-6
"""Fixed cost of one tensor-parallel all-reduce (launch and synchronisation)."""


class Bound(enum.IntEnum):
    """What limits a decode step (accelplan.v1.PerformanceBound)."""

    MEMORY_BANDWIDTH = 1
    COMPUTE = 2


class Efficiency(NamedTuple):
    """Utilisation overrides; None means each device's and the engine's own figure."""

    decode_mbu: float | None = None
    decode_mfu: float = DEFAULT_DECODE_MFU
    prefill_mfu: float | None = None
    decode_overhead_seconds_per_layer: float | None = None


DEFAULT_EFFICIENCY = Efficiency()
"""The utilisation factors a caller has not overridden."""


class Workload(NamedTuple):
    """What is being served: the model, its storage, and the traffic shape."""

    counts: ParameterCounts
    weight_format: WeightFormat
    architecture: Architecture | None
    kv_bits: int
    batch_size: int
    prompt_tokens: int
    output_tokens: int
    layer_count: int = 0
    """Layers a token passes through for the per-layer overhead; 0 means the architecture's (none if unknown)."""
    engine: Engine = Engine.UNSPECIFIED
    """The serving engine (UNSPECIFIED: a server engine, vLLM's figures)."""


class Performance(NamedTuple):
    """Predicted latency and throughput."""

    prefill_seconds: float
    decode_seconds_per_token: float
    bound: Bound
    memory_seconds: float
    compute_seconds: float
    communication_seconds: float
    bytes_read_per_step: float
    assumptions: tuple[str, ...]

    @property
    def decode_tokens_per_second_per_sequence(self) -> float:
        """One sequence's decode speed."""
        return 1.0 / self.decode_seconds_per_token

    @property
    def decode_tokens_per_second_total(self) -> float:
        """All sequences together; set by the caller's batch size."""
        return self.batch_size / self.decode_seconds_per_token

    batch_size: int = 1
    """Sequences decoded together."""
    decode_mbu: float = DEFAULT_DECODE_MBU
    """Weight-read bandwidth utilisation used (the slowest stage's when devices differ)."""
    prefill_mfu: float = 0.0
    """Prefill FLOPS utilisation used (after the prompt-length curve)."""


def _expert_fraction_touched(arch: Architecture | None, batch: int) -> float:
    """Expected share of routed experts a step reads: 1 - (1 - k/E)^batch (uniform routing)."""
    if arch is None or not arch.is_moe:
        return 0.0
    k, e = arch.num_experts_per_tok, arch.num_local_experts
    return 1.0 - (1.0 - k / e) ** batch


@functools.lru_cache(maxsize=64)
def _efficiency_note(efficiency: Efficiency, engine: Engine, mbu_note: str, metal: bool) -> str:
    e = profile(engine, metal)
    overhead = efficiency.decode_overhead_seconds_per_layer
    overhead = e.decode_overhead_seconds_per_layer if overhead is None else overhead
    if efficiency.prefill_mfu is None:
        half = f", half of that at {e.prefill_half_tokens} tokens per matrix multiply" if e.prefill_half_tokens else ""
        batches = f" in micro-batches of {e.prefill_micro_batch_tokens} tokens" if e.prefill_micro_batch_tokens else ""
        prefill = (
            f"prefill{batches} at up to {e.prefill_mfu_max:.0%} MFU{half}, plus "
            f"{e.prefill_overhead_seconds_per_layer * 1e6:g} us per layer per micro-batch"
        )
    else:
        prefill = f"prefill at {efficiency.prefill_mfu:.0%} MFU (caller's figure)"
    default = " (UNSPECIFIED: the server-engine default)" if engine is Engine.UNSPECIFIED else ""
    return (
        f"Engine {e.name}{default}: decode at {mbu_note} and {efficiency.decode_mfu:.0%} of dense peak FLOPS "
        f"(MFU), KV-cache reads at {e.kv_read_efficiency:.0%} of that bandwidth utilisation, plus "
        f"{overhead * 1e6:g} us per layer per step of fixed overhead; {prefill}. Figures: {e.source}."
    )


@functools.lru_cache(maxsize=256)
def _tensor_parallel_note(t: int, link_gbps: float) -> str:
    return (
        f"Tensor parallel over {t}: 2 all-reduces per layer, {ALLREDUCE_LATENCY_SECONDS * 1e6:g} us "
        f"each plus a ring transfer at {link_gbps:g} GB/s."
    )


def _stage_seconds(
    work: float, shares: Sequence[float], rates: Sequence[float], scale: float, efficiency: float
) -> float:
    """Sum over stages of work x share / (rate x scale x efficiency); a stage with rate 0 adds 0.

    Mapped in C when every rate is known: a pipeline over 1,000 devices costs
    microseconds, not milliseconds.
    """
    if len(rates) == 1:
        r = rates[0]
        return 0.0 + (work * shares[0] / (r * scale * efficiency) if r > 0 else 0.0)
    if all(rates):
        numerators = map(mul, repeat(work), shares)
        denominators = map(mul, map(mul, rates, repeat(scale)), repeat(efficiency))
        return reduce(add, map(truediv, numerators, denominators), 0.0)
    terms = (work * f / (r * scale * efficiency) if r > 0 else 0.0 for f, r in zip(shares, rates, strict=True))
    return reduce(add, terms, 0.0)


def estimate_performance(
    work: Workload,
    devices: Sequence[DeviceSpecs],
    *,
    tensor_parallel: int,
    pipeline_parallel: int,
    link_gbps: float,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
    stage_fractions: Sequence[float] | None = None,
) -> Performance:
    """Roofline prediction for ``devices`` arranged as pipeline_parallel stages of tensor_parallel devices.

    ``devices`` lists tensor_parallel * pipeline_parallel devices, stage by stage;
    ``stage_fractions`` is each stage's share of the layers (even when omitted).
    """
    arrangement = Arrangement.of(devices, work.weight_format.quantization, tensor_parallel, pipeline_parallel)
    return roofline(work, arrangement, link_gbps=link_gbps, efficiency=efficiency, stage_fractions=stage_fractions)


def roofline(
    work: Workload,
    devices: Arrangement,
    *,
    link_gbps: float,
    efficiency: Efficiency = DEFAULT_EFFICIENCY,
    stage_fractions: Sequence[float] | None = None,
) -> Performance:
    """Roofline prediction for ``work`` on an arrangement of devices (at the workload's precision)."""
    t, p = devices.tensor_parallel, devices.pipeline_parallel
    fractions = stage_fractions or [1.0 / p] * p
    counts, fmt, arch = work.counts, work.weight_format, work.architecture
    engine = profile(work.engine, devices.all_metal)
    # The assumptions that depend only on the devices and settings are worked out once per arrangement.
    key = (efficiency, link_gbps, arch is not None, work.engine)
    head, tail = devices.memo(key, lambda: _fixed_notes(devices, efficiency, link_gbps, arch is not None, work.engine))
    notes = list(head)
    active = counts.active
    tied = arch.tie_word_embeddings if arch else True
    dense_read = bytes_read_per_token(counts, fmt, tied)
    moe_extra = 0.0
    if arch is not None and arch.is_moe and work.batch_size > 1:
        per_expert_bytes = (dense_read * counts.active_experts / max(1, active)) / max(1, arch.num_experts_per_tok)
        touched = _expert_fraction_touched(arch, work.batch_size) * arch.num_local_experts
        moe_extra = max(0.0, touched - arch.num_experts_per_tok) * per_expert_bytes
        notes.append(
            f"MoE: a batch of {work.batch_size} touches about {touched:.1f} of "
            f"{arch.num_local_experts} experts per layer (uniform routing)."
        )
    average_context = work.prompt_tokens + work.output_tokens / 2
    per_sequence = kv_bytes_per_sequence(arch, int(average_context), work.kv_bits, t) if arch else 0
    kv_read = work.batch_size * per_sequence * t
    weight_read = dense_read + moe_extra
    step_bytes = weight_read + kv_read
    flops_per_token = 2.0 * active
    if arch is not None:
        attention_context = average_context
        flops_per_token += 4.0 * arch.num_hidden_layers * arch.num_attention_heads * arch.head_dim * attention_context
    step_flops = flops_per_token * work.batch_size

    # Each stage goes at its slowest device's pace; a sequence's token passes the stages one after another.
    shares = fractions if t == 1 else [f / t for f in fractions]
    if efficiency.decode_mbu is None:
        rates, scale = devices.stage_effective_bandwidths_gbps, 1.0
    else:
        rates, scale = devices.stage_bandwidths_gbps, efficiency.decode_mbu
    weights_s = _stage_seconds(weight_read, shares, rates, 1e9, scale)
    kv_s = _stage_seconds(kv_read, shares, rates, 1e9, scale * engine.kv_read_efficiency) if kv_read else 0.0
    memory_s = weights_s + kv_s
    compute_s = _stage_seconds(step_flops, shares, devices.stage_peaks_tflops, 1e12, efficiency.decode_mfu)

    comm_s = 0.0
    hidden = arch.hidden_size if arch else 0
    layers = arch.num_hidden_layers if arch else 0
    if t > 1:
        message = work.batch_size * hidden * 2
        per_reduce = ALLREDUCE_LATENCY_SECONDS + (
            2 * (t - 1) / t * message / (link_gbps * 1e9) if link_gbps > 0 else 0.0
        )
        comm_s = 2 * layers * per_reduce
    layer_count = work.layer_count or (arch.num_hidden_layers if arch else 0)
    per_layer = efficiency.decode_overhead_seconds_per_layer
    per_layer = engine.decode_overhead_seconds_per_layer if per_layer is None else per_layer
    overhead_s = layer_count * per_layer
    step_s = max(memory_s, compute_s) + comm_s + overhead_s
    bound = Bound.MEMORY_BANDWIDTH if memory_s >= compute_s else Bound.COMPUTE

    prefill_s, prefill_mfu = _prefill_seconds(work, devices, engine, efficiency, weights_s, layer_count)
    if t > 1 and arch is not None:
        message = work.batch_size * work.prompt_tokens * hidden * 2
        prefill_s += (
            2
            * layers
            * (ALLREDUCE_LATENCY_SECONDS + (2 * (t - 1) / t * message / (link_gbps * 1e9) if link_gbps > 0 else 0.0))
        )
    notes.extend(tail)
    mbu = efficiency.decode_mbu if efficiency.decode_mbu is not None else devices.slowest_mbu
    return Performance(
        prefill_s,
        step_s,
        bound,
        memory_s,
        compute_s,
        comm_s,
        step_bytes,
        tuple(notes),
        work.batch_size,
        mbu,
        prefill_mfu,
    )


def prefill_mfu(engine: EngineProfile, tokens_per_matmul: int) -> float:
    """The engine's prefill MFU for matrix multiplies over ``tokens_per_matmul`` rows."""
    if engine.prefill_half_tokens <= 0:
        return engine.prefill_mfu_max
    n = max(1, tokens_per_matmul)
    return engine.prefill_mfu_max * n / (n + engine.prefill_half_tokens)


def _prefill_seconds(
    work: Workload,
    devices: Arrangement,
    engine: EngineProfile,
    efficiency: Efficiency,
    weights_s: float,
    layer_count: int,
) -> tuple[float, float]:
    """(seconds to process every prompt of the batch, the MFU used).

    The prompt's FLOPs at the MFU its matrix-multiply size reaches, or the weight reads
    (once per micro-batch) if longer, plus a fixed cost per layer per micro-batch.
    """
    arch, p = work.architecture, devices.pipeline_parallel
    tokens = work.prompt_tokens * work.batch_size
    prompt_flops = 2.0 * work.counts.active * tokens
    if arch is not None:
        attention = 2.0 * arch.num_hidden_layers * arch.num_attention_heads * arch.head_dim * work.prompt_tokens**2
        prompt_flops += attention * work.batch_size / engine.prefill_attention_efficiency
    micro = engine.prefill_micro_batch_tokens
    rows = min(tokens, micro) if micro > 0 else tokens
    micro_batches = max(1, math.ceil(tokens / micro)) if micro > 0 else 1
    mfu = efficiency.prefill_mfu if efficiency.prefill_mfu is not None else prefill_mfu(engine, rows)
    peak_total = (devices.total_fp16_accumulate_tflops if engine.fp16_accumulate else devices.total_peak_tflops) / p
    compute = prompt_flops / (peak_total * 1e12 * mfu) if peak_total > 0 and tokens else 0.0
    reads = micro_batches * weights_s if tokens else 0.0
    fixed = micro_batches * layer_count * engine.prefill_overhead_seconds_per_layer if tokens else 0.0
    return max(compute, reads) + fixed, mfu


def _fixed_notes(
    devices: Arrangement, efficiency: Efficiency, link_gbps: float, architecture_known: bool, engine: Engine
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The assumptions before and after the model's own (the MoE note), in the order roofline states them."""
    t, p = devices.tensor_parallel, devices.pipeline_parallel
    if efficiency.decode_mbu is not None:
        mbu_note = f"{efficiency.decode_mbu:.0%} of peak memory bandwidth (MBU, caller's figure)"
    else:
        mbu_note = devices.mbu_note
    head = (_efficiency_note(efficiency, engine, mbu_note, devices.all_metal),)
    tail: list[str] = []
    if not architecture_known:
        tail.append("Architecture unknown: KV-cache reads, attention FLOPs and per-layer overhead are not modelled.")
    if not devices.peaks_known:
        tail.append("Peak FLOPS unknown for a device: the compute bound was not checked.")
    if t > 1:
        if not architecture_known:
            tail.append("Tensor-parallel communication not modelled (architecture unknown).")
        elif link_gbps <= 0:
            tail.append("No interconnect bandwidth known: only all-reduce latency is counted.")
        tail.append(_tensor_parallel_note(t, link_gbps))
    if p > 1:
        tail.append(f"Pipeline over {p} stages: a sequence's token passes the stages one after another.")
    tail.extend(n for n in devices.notes if n not in head and n not in tail)
    return head, tuple(tail)
