"""Memory to serve a model whose architecture is known, and its inverse: what fits a memory budget.

Per device, under tensor parallelism of degree t:

    weights     = weight bytes / t                               (weights.weights_bytes)
    kv_cache    = batch * sum over layers of cached tokens * KV values per token per layer
                  * kv bytes, with KV heads per device = max(1, kv_heads / t); sliding-window
                  layers cache at most their window, MLA caches kv_lora_rank + qk_rope_head_dim
    activations = T * (2 * hidden + 3 * mlp_width / t) * 2 bytes + batch * vocab / t * 4 bytes,
                  T = min(batch * context, max_batched_tokens): the widest forward pass
    overhead    = a fixed runtime reserve (CUDA context, communication buffers)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat, weights_bytes

DEFAULT_CONTEXT_LENGTH = 4096
DEFAULT_MAX_BATCHED_TOKENS = 8192
"""Tokens in the widest forward pass (vLLM's chunked-prefill budget)."""
RUNTIME_OVERHEAD_BYTES = 2**29
"""Per-device reserve outside weights, KV cache and activations (CUDA context, communication
buffers): 0.5 GiB, within the 0.16-1.79 GiB of "non-torch memory" vLLM reports in tests/validation."""
DEFAULT_KV_BITS = 16
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
MAX_SEARCH_CONTEXT = 1 << 31


class ServingShape(NamedTuple):
    """The traffic a deployment is sized for."""

    context_length: int = DEFAULT_CONTEXT_LENGTH
    batch_size: int = 1
    kv_bits: int = DEFAULT_KV_BITS
    tensor_parallel: int = 1
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS


class ServingMemory(NamedTuple):
    """Bytes per device, by part."""

    weights_bytes: int
    kv_cache_bytes: int
    kv_cache_bytes_per_token: int
    activation_bytes: int
    overhead_bytes: int
    assumptions: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        """Sum of the parts."""
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes + self.overhead_bytes


def kv_bytes_per_token(arch: Architecture, kv_bits: int, tensor_parallel: int = 1) -> int:
    """Bytes one more token of context adds, per device, while inside every sliding window."""
    return arch.num_hidden_layers * arch.kv_elements_per_token_per_layer_sharded(tensor_parallel) * kv_bits // 8


def kv_bytes_per_sequence(arch: Architecture, context: int, kv_bits: int, tensor_parallel: int = 1) -> int:
    """KV-cache bytes one sequence of ``context`` tokens holds, per device."""
    full, sliding = arch.kv_cached_tokens(context)
    kv = (full + sliding) * arch.kv_elements_per_token_per_layer_sharded(tensor_parallel) * kv_bits // 8
    return kv + arch.recurrent_state_elements(tensor_parallel) * kv_bits // 8  # state-space models: fixed state


def activation_bytes(arch: Architecture, shape: ServingShape) -> int:
    """Peak activation bytes per device for the widest forward pass."""
    tokens = min(shape.batch_size * shape.context_length, shape.max_batched_tokens)
    if arch.is_moe:
        expert_inner = arch.moe_intermediate_size or arch.intermediate_size
        width = expert_inner * (arch.num_experts_per_tok + arch.n_shared_experts)
        width = max(width, arch.intermediate_size if arch.first_k_dense_replace else 0)
    else:
        width = arch.intermediate_size
    t = max(1, shape.tensor_parallel)
    hidden_states = tokens * (2 * arch.hidden_size + 3 * width // t) * 2
    logits = min(shape.batch_size, tokens) * -(-arch.vocab_size // t) * 4
    return hidden_states + logits


_OVERHEAD_NOTE = (
    f"Runtime overhead reserved: {RUNTIME_OVERHEAD_BYTES / 2**30:g} GiB per device (CUDA context, "
    "communication buffers)."
)


@functools.lru_cache(maxsize=64)
def _activations_note(max_batched_tokens: int) -> str:
    return (
        f"Activations for a forward pass of min(batch x context, {max_batched_tokens}) tokens, 16-bit, "
        "plus FP32 logits for one token per sequence."
    )


@functools.lru_cache(maxsize=256)
def _describe(fmt: WeightFormat) -> str:
    return fmt.describe()


def estimate_serving_memory(arch: Architecture, fmt: WeightFormat, shape: ServingShape) -> ServingMemory:
    """Per-device serving memory for a known architecture."""
    t = max(1, shape.tensor_parallel)
    weights = -(-weights_bytes(arch.parameters, fmt) // t)
    per_token = kv_bytes_per_token(arch, shape.kv_bits, t)
    kv = shape.batch_size * kv_bytes_per_sequence(arch, shape.context_length, shape.kv_bits, t)
    act = activation_bytes(arch, shape)
    state_note = (
        f"No KV cache: a recurrent state of {arch.recurrent_state_elements(t) * shape.kv_bits // 8} bytes per "
        f"sequence per device, whatever the context, for {shape.batch_size} sequence(s) at {shape.kv_bits}-bit."
    )
    notes = [
        _describe(fmt),
        state_note
        if arch.is_ssm
        else f"KV cache for {shape.batch_size} sequence(s) of {shape.context_length} tokens at {shape.kv_bits}-bit: "
        + (
            f"MLA latent of {arch.kv_lora_rank} + rope key of {arch.qk_rope_head_dim} per layer"
            if arch.is_mla
            else f"{max(1, -(-arch.num_key_value_heads // t))} KV head(s) of {arch.head_dim} per layer per device"
        )
        + ".",
        _activations_note(shape.max_batched_tokens),
        _OVERHEAD_NOTE,
        *arch.notes,
    ]
    if arch.sliding_layer_count:
        notes.append(
            f"{arch.sliding_layer_count} of {arch.num_hidden_layers} layers keep only the last "
            f"{arch.sliding_window} tokens (sliding window)."
        )
    if t > 1:
        notes.append(
            f"Per device under tensor parallelism of {t}: weights, KV heads and MLP split {t} ways; "
            f"KV heads per device = max(1, {arch.num_key_value_heads} / {t})."
        )
    return ServingMemory(weights, kv, per_token, act, RUNTIME_OVERHEAD_BYTES, tuple(notes))


@dataclass(frozen=True)
class Capacity:
    """What fits per device after weights, activations and overhead."""

    usable_bytes: int
    kv_budget_bytes: int
    max_context_length: int
    """Longest context for ``batch_size`` concurrent sequences (0 when nothing fits)."""
    max_concurrent_sequences: int
    """Most sequences of ``context_length`` tokens held at once."""
    kv_cache_tokens: int
    """Tokens of full-attention context the KV budget holds."""
    memory: ServingMemory


def estimate_capacity(
    arch: Architecture,
    fmt: WeightFormat,
    shape: ServingShape,
    device_memory_bytes: int,
    memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> Capacity:
    """What fits on each of shape.tensor_parallel devices of ``device_memory_bytes``.

    The longest context for shape.batch_size sequences and the most sequences of
    shape.context_length tokens.
    """
    usable = int(device_memory_bytes * memory_utilization)
    base = estimate_serving_memory(arch, fmt, shape)
    # Long contexts and many sequences fill whole prefill chunks: size activations for a full chunk.
    full_chunk = activation_bytes(arch, shape._replace(context_length=shape.max_batched_tokens))
    base = base._replace(activation_bytes=max(base.activation_bytes, full_chunk))
    fixed = base.weights_bytes + base.activation_bytes + base.overhead_bytes
    budget = max(0, usable - fixed)
    t = shape.tensor_parallel
    per_seq = kv_bytes_per_sequence(arch, shape.context_length, shape.kv_bits, t)
    sequences = budget // per_seq if per_seq else 0
    limit = arch.max_position_embeddings or MAX_SEARCH_CONTEXT
    low, high = 0, limit
    while low < high:  # largest context whose KV for batch_size sequences fits; at most 32 steps
        mid = (low + high + 1) // 2
        if shape.batch_size * kv_bytes_per_sequence(arch, mid, shape.kv_bits, t) <= budget:
            low = mid
        else:
            high = mid - 1
    per_token = kv_bytes_per_token(arch, shape.kv_bits, t)
    return Capacity(usable, budget, low, sequences, budget // per_token if per_token else 0, base)
