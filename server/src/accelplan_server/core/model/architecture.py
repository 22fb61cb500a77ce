"""Transformer architectures: normalised from Hugging Face config.json, with exact parameter counts.

Field names follow config.json. ``Architecture.from_config`` accepts the
config of the common decoder families (Llama, Mistral, Mixtral, Qwen2, Gemma 2,
Phi-3, Cohere, DeepSeek V2/V3 MLA + MoE, Falcon, DBRX) and normalises their
spellings (``n_routed_experts`` -> ``num_local_experts``, DBRX's ``d_model``,
Falcon's ``multi_query``). Counts are exact for the tensors those families
store: embeddings, attention (GQA/MQA, QKV bias, MLA low-rank projections,
QK norms), gated or plain MLPs, MoE experts plus shared experts and router,
norms, and an untied LM head.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from accelplan_server.core.errors import FieldViolation, InvalidArgument

MAX_DIMENSION = 1 << 24
"""Largest hidden size, intermediate size or vocabulary accepted."""
MAX_LAYERS = 4096
MAX_HEADS = 16384
MAX_EXPERTS = 65536


class ParameterCounts(NamedTuple):
    """Parameters by role; ``total`` is what the weights hold, ``active`` what one token uses."""

    embedding: int
    lm_head: int
    attention: int
    mlp_dense: int
    experts: int
    shared_experts: int
    router: int
    norms: int
    active_experts: int

    @property
    def total(self) -> int:
        """All stored parameters: every field but active_experts (summed in C)."""
        return sum(self[:8])

    @property
    def active(self) -> int:
        """Parameters one token passes through (routed experts: only the top-k)."""
        return self.total - self.experts + self.active_experts

    @property
    def linear(self) -> int:
        """Parameters in the blocks' linear layers (those weight quantization applies to)."""
        return self.attention + self.mlp_dense + self.experts + self.shared_experts


@dataclass(frozen=True)
class Architecture:
    """A decoder-only transformer, in config.json's terms."""

    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    model_type: str = ""
    attention_bias: bool = False
    """Bias on q, k, v and o projections (Llama's flag)."""
    qkv_bias: bool = False
    """Bias on q, k and v only (Qwen2)."""
    mlp_bias: bool = False
    gated_mlp: bool = True
    """Gate, up and down projections (SwiGLU/GeGLU); False: up and down only (Falcon, GPT)."""
    norms_per_layer: int = 2
    norm_has_bias: bool = False
    qk_norm: bool = False
    """Per-head LayerNorm on queries and keys (Cohere use_qk_norm)."""
    parallel_attn: bool = False
    num_local_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    n_shared_experts: int = 0
    first_k_dense_replace: int = 0
    moe_layer_freq: int = 1
    router_bias: bool = False
    """A per-expert score-correction bias in the router (DeepSeek V3 noaux_tc)."""
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    """Tokens a sliding-window layer attends to; 0 for none."""
    layer_types: tuple[str, ...] = field(default=())
    """Per layer: "full_attention" or "sliding_attention"; empty when all layers are full
    (or, with a sliding_window, all sliding)."""
    max_position_embeddings: int = 0

    # ----- derived facts -----

    @property
    def is_mla(self) -> bool:
        """DeepSeek multi-head latent attention."""
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        """Mixture of experts."""
        return self.num_local_experts > 0

    def is_moe_layer(self, index: int) -> bool:
        """Whether layer ``index`` has routed experts."""
        return self.is_moe and index >= self.first_k_dense_replace and index % max(1, self.moe_layer_freq) == 0

    @cached_property
    def moe_layer_count(self) -> int:
        """Layers with routed experts."""
        return sum(1 for i in range(self.num_hidden_layers) if self.is_moe_layer(i))

    def is_sliding_layer(self, index: int) -> bool:
        """Whether layer ``index`` attends to a sliding window only."""
        if not self.sliding_window:
            return False
        if self.layer_types:
            return self.layer_types[index] == "sliding_attention"
        return True

    @cached_property
    def sliding_layer_count(self) -> int:
        """Layers limited to the sliding window."""
        return sum(1 for i in range(self.num_hidden_layers) if self.is_sliding_layer(i))

    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached values per token per layer: K and V heads, or MLA's latent plus rope key."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_key_value_heads * self.head_dim

    def kv_elements_per_token_per_layer_sharded(self, tensor_parallel: int) -> int:
        """Per device under tensor parallelism: KV heads per device = max(1, kv_heads / t).

        MLA's latent is not split by heads; each device keeps all of it.
        """
        if self.is_mla:
            return self.kv_elements_per_token_per_layer
        heads = max(1, math.ceil(self.num_key_value_heads / max(1, tensor_parallel)))
        return 2 * heads * self.head_dim

    def kv_cached_tokens(self, context: int) -> tuple[int, int]:
        """(full-attention layers x context, sliding layers x min(context, window)) token-layers."""
        full = self.num_hidden_layers - self.sliding_layer_count
        sliding = self.sliding_layer_count * min(context, self.sliding_window) if self.sliding_window else 0
        return full * context, sliding

    # ----- parameter counts -----

    def _attention_params(self) -> int:
        h, a, kv, d = self.hidden_size, self.num_attention_heads, self.num_key_value_heads, self.head_dim
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            rank = self.q_lora_rank
            q = h * rank + rank + rank * a * qk if rank else h * a * qk
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
            kv_b = self.kv_lora_rank * a * (self.qk_nope_head_dim + self.v_head_dim)
            o = a * self.v_head_dim * h
            return q + kv_a + kv_b + o
        weights = h * a * d + 2 * h * kv * d + a * d * h
        bias = 0
        if self.attention_bias:
            bias = a * d + 2 * kv * d + h
        elif self.qkv_bias:
            bias = a * d + 2 * kv * d
        qk_norm = (a * d + kv * d) if self.qk_norm else 0
        return weights + bias + qk_norm

    def _mlp_params(self, inner: int) -> int:
        h = self.hidden_size
        if self.gated_mlp:
            return 3 * h * inner + (2 * inner + h if self.mlp_bias else 0)
        return 2 * h * inner + (inner + h if self.mlp_bias else 0)

    @cached_property
    def parameters(self) -> ParameterCounts:
        """Exact parameter counts by role."""
        h, v = self.hidden_size, self.vocab_size
        layers = self.num_hidden_layers
        moe_layers = self.moe_layer_count
        dense_layers = layers - moe_layers
        norm = h * (2 if self.norm_has_bias else 1)
        expert_inner = self.moe_intermediate_size or self.intermediate_size
        per_expert = self._mlp_params(expert_inner)
        experts = moe_layers * self.num_local_experts * per_expert
        router = moe_layers * (self.num_local_experts * h + (self.num_local_experts if self.router_bias else 0))
        return ParameterCounts(
            embedding=v * h,
            lm_head=0 if self.tie_word_embeddings else v * h,
            attention=layers * self._attention_params(),
            mlp_dense=dense_layers * self._mlp_params(self.intermediate_size),
            experts=experts,
            shared_experts=moe_layers * self.n_shared_experts * per_expert,
            router=router,
            norms=layers * self.norms_per_layer * norm + norm,
            active_experts=moe_layers * min(self.num_experts_per_tok, self.num_local_experts) * per_expert,
        )

    @cached_property
    def largest_layer_parameters(self) -> int:
        """Parameters of the largest single weight-holding module (DeepSpeed's largest_layer_params)."""
        h, a, d = self.hidden_size, self.num_attention_heads, self.head_dim
        candidates = [self.vocab_size * h, h * a * d, self.hidden_size * max(self.intermediate_size, 1)]
        if self.is_moe:
            candidates.append(h * (self.moe_intermediate_size or self.intermediate_size))
        return max(candidates)

    # ----- construction -----

    @classmethod
    def from_config(cls, config: Mapping[str, Any], field_prefix: str = "architecture") -> Architecture:
        """Normalise a config.json mapping; bad or missing values raise InvalidArgument naming each field."""
        return _Parser(config, field_prefix).parse()


class _Parser:
    def __init__(self, config: Mapping[str, Any], prefix: str) -> None:
        self.c = dict(config)
        self.prefix = prefix
        self.bad: list[FieldViolation] = []

    def _path(self, key: str) -> str:
        return f"{self.prefix}.{key}"

    def _int(
        self, *keys: str, required: bool = False, default: int = 0, low: int = 0, high: int = MAX_DIMENSION
    ) -> int:
        for key in keys:
            if key in self.c and self.c[key] is not None:
                value = self.c[key]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or (isinstance(value, float) and not value.is_integer())
                ):
                    self.bad.append(FieldViolation(self._path(key), f"must be an integer, got {value!r}"))
                    return default
                if not low <= int(value) <= high:
                    self.bad.append(FieldViolation(self._path(key), f"must be from {low} to {high}, got {value}"))
                    return default
                return int(value)
        if required:
            self.bad.append(FieldViolation(self._path(keys[0]), "required"))
        return default

    def _bool(self, key: str, default: bool = False) -> bool:
        value = self.c.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.bad.append(FieldViolation(self._path(key), f"must be true or false, got {value!r}"))
            return default
        return value

    def parse(self) -> Architecture:
        c = self.c
        model_type = str(c.get("model_type") or "")
        if model_type == "dbrx":
            self._flatten_dbrx()
        layers = self._int("num_hidden_layers", "n_layers", "num_layers", required=True, low=1, high=MAX_LAYERS)
        hidden = self._int("hidden_size", "d_model", "n_embd", required=True, low=1)
        heads = self._int("num_attention_heads", "n_heads", "n_head", required=True, low=1, high=MAX_HEADS)
        vocab = self._int("vocab_size", required=True, low=1)
        kv_key = "num_kv_heads" if model_type == "falcon" else "num_key_value_heads"
        kv_heads = self._int(kv_key, "num_key_value_heads", "n_head_kv", default=heads, low=1, high=MAX_HEADS)
        if model_type == "falcon" and c.get("multi_query") and not c.get("new_decoder_architecture"):
            kv_heads = 1
        head_dim = self._int("head_dim", default=0, low=0)
        kv_lora = self._int("kv_lora_rank", low=0)
        if not head_dim and heads and hidden:
            if hidden % heads and not kv_lora:
                self.bad.append(
                    FieldViolation(
                        self._path("num_attention_heads"),
                        f"does not divide hidden_size ({hidden} / {heads}); set head_dim",
                    )
                )
            head_dim = hidden // heads if heads else 0
        if kv_heads > heads:
            self.bad.append(FieldViolation(self._path(kv_key), f"{kv_heads} exceeds num_attention_heads ({heads})"))
        elif kv_heads and heads % kv_heads:
            self.bad.append(FieldViolation(self._path(kv_key), f"must divide num_attention_heads ({heads})"))
        falcon = model_type == "falcon"
        intermediate = self._int("intermediate_size", "ffn_hidden_size", default=4 * hidden if falcon else 0, low=0)
        experts = self._int("num_local_experts", "n_routed_experts", "num_experts", low=0, high=MAX_EXPERTS)
        per_tok = self._int("num_experts_per_tok", "moe_top_k", low=0, high=MAX_EXPERTS)
        moe_inner = self._int("moe_intermediate_size", low=0)
        if not intermediate and not (experts and moe_inner):
            self.bad.append(FieldViolation(self._path("intermediate_size"), "required"))
        if experts and not per_tok:
            self.bad.append(FieldViolation(self._path("num_experts_per_tok"), "required with experts"))
        if per_tok > experts:
            self.bad.append(
                FieldViolation(
                    self._path("num_experts_per_tok"), f"{per_tok} exceeds the number of experts ({experts})"
                )
            )
        sliding = self._int("sliding_window", low=0, high=1 << 31)
        if c.get("use_sliding_window") is False:
            sliding = 0
        layer_types = self._layer_types(layers, sliding, model_type)
        gemma2 = model_type == "gemma2"
        cohere = model_type == "cohere"
        new_falcon = falcon and bool(c.get("new_decoder_architecture"))
        arch = Architecture(
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            intermediate_size=intermediate,
            vocab_size=vocab,
            tie_word_embeddings=self._bool("tie_word_embeddings", default=False),
            model_type=model_type,
            attention_bias=self._bool("attention_bias") or (falcon and self._bool("bias")),
            qkv_bias=model_type in ("qwen2", "qwen2_moe") or self._bool("qkv_bias"),
            mlp_bias=self._bool("mlp_bias") or (falcon and self._bool("bias")),
            gated_mlp=not falcon,
            norms_per_layer=4 if gemma2 else (1 if cohere or (falcon and not new_falcon) else 2),
            norm_has_bias=falcon,
            qk_norm=self._bool("use_qk_norm"),
            parallel_attn=falcon or cohere or self._bool("parallel_attn"),
            num_local_experts=experts,
            num_experts_per_tok=per_tok,
            moe_intermediate_size=moe_inner,
            n_shared_experts=self._int("n_shared_experts", low=0, high=MAX_EXPERTS),
            first_k_dense_replace=self._int("first_k_dense_replace", low=0, high=MAX_LAYERS),
            moe_layer_freq=self._int("moe_layer_freq", default=1, low=1, high=MAX_LAYERS),
            router_bias=str(c.get("topk_method") or "") == "noaux_tc",
            q_lora_rank=self._int("q_lora_rank", low=0),
            kv_lora_rank=kv_lora,
            qk_rope_head_dim=self._int("qk_rope_head_dim", low=0),
            qk_nope_head_dim=self._int("qk_nope_head_dim", low=0),
            v_head_dim=self._int("v_head_dim", low=0),
            sliding_window=sliding,
            layer_types=layer_types,
            max_position_embeddings=self._int(
                "max_position_embeddings", "max_seq_len", "n_positions", low=0, high=1 << 31
            ),
        )
        if kv_lora and not (arch.qk_rope_head_dim and arch.qk_nope_head_dim and arch.v_head_dim):
            self.bad.append(
                FieldViolation(
                    self._path("kv_lora_rank"), "MLA needs qk_rope_head_dim, qk_nope_head_dim and v_head_dim"
                )
            )
        if self.bad:
            raise InvalidArgument(self.bad)
        return arch

    def _layer_types(self, layers: int, sliding: int, model_type: str) -> tuple[str, ...]:
        raw = self.c.get("layer_types")
        if raw is not None:
            if (
                not isinstance(raw, list)
                or len(raw) != layers
                or any(t not in ("full_attention", "sliding_attention") for t in raw)
            ):
                self.bad.append(
                    FieldViolation(
                        self._path("layer_types"),
                        f"must list {layers} entries, each full_attention or sliding_attention",
                    )
                )
                return ()
            return tuple(raw)
        if not sliding:
            return ()
        pattern = self._int("sliding_window_pattern", low=0, high=MAX_LAYERS)
        if model_type == "gemma2" and not pattern:
            pattern = 2  # Gemma 2: even layers slide, odd layers are global
        if pattern:
            # Every pattern-th layer (1-based) is global; the rest slide (Gemma 2 and 3).
            return tuple("full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers))
        return ()

    def _flatten_dbrx(self) -> None:
        attn = self.c.get("attn_config") or {}
        ffn = self.c.get("ffn_config") or {}
        if isinstance(attn, dict) and "kv_n_heads" in attn:
            self.c.setdefault("num_key_value_heads", attn["kv_n_heads"])
        if isinstance(ffn, dict):
            for src, dst in (
                ("ffn_hidden_size", "intermediate_size"),
                ("moe_num_experts", "num_local_experts"),
                ("moe_top_k", "num_experts_per_tok"),
            ):
                if src in ffn:
                    self.c.setdefault(dst, ffn[src])
