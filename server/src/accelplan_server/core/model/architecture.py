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
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, NamedTuple

from accelplan_server.core.errors import FieldViolation, InvalidArgument, shown
from accelplan_server.core.model import families

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
    other: int = 0
    """Parameters outside the decoder stack: a multimodal model's vision tower and projector."""

    @property
    def total(self) -> int:
        """All stored parameters: every field but active_experts (summed in C)."""
        return sum(self[:8]) + self.other

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
    """Norms on queries and keys: per head (Cohere use_qk_norm) or over the whole projection (OLMo 2)."""
    qk_norm_head_dim_only: bool = False
    """The q and k norms are one head_dim-wide RMSNorm each, shared by every head (Qwen3, Gemma 3)."""
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
    learned_position_embeddings: int = 0
    """Rows of a learned absolute position table (GPT-2's wpe); 0 for rotary or ALiBi models."""
    lm_head_bias: bool = False
    """A bias on the LM head (GPT-J)."""
    shared_expert_intermediate_size: int = 0
    """Width of Qwen2-MoE's one shared expert, which has its own sigmoid gate (hidden -> 1)."""
    decoder_sparse_step: int = 0
    """Qwen-MoE: every decoder_sparse_step-th layer (1-based) has experts; 0 means moe_layer_freq applies."""
    mlp_only_layers: tuple[int, ...] = ()
    """Qwen-MoE: layers kept dense."""
    extra_parameters: int = 0
    """Parameters outside the decoder stack (vision tower, multimodal projector)."""
    ssm_kind: str = ""
    """"mamba" (Mamba, Falcon-Mamba) or "mamba2": every layer is a state-space mixer, no attention."""
    ssm_state_size: int = 0
    ssm_conv_kernel: int = 0
    ssm_time_step_rank: int = 0
    """Mamba: width of the dt projection."""
    ssm_heads: int = 0
    """Mamba-2: heads (d_inner / head_dim of the mixer)."""
    ssm_groups: int = 0
    """Mamba-2: groups sharing B and C."""
    ssm_conv_bias: bool = True
    ssm_proj_bias: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)
    """What was assumed or counted beyond config.json's decoder fields, one sentence each."""

    # ----- derived facts -----

    @property
    def is_ssm(self) -> bool:
        """A state-space model: a fixed recurrent state per sequence instead of a KV cache."""
        return bool(self.ssm_kind)

    def recurrent_state_elements(self, tensor_parallel: int = 1) -> int:
        """Values of one sequence's recurrent state over every layer, per device (0 for transformers).

        Mamba: d_inner x (state_size + conv_kernel - 1) per layer. Mamba-2: the SSM state
        d_inner x state_size plus the convolution window over d_inner + 2 x groups x state_size channels.
        """
        if not self.ssm_kind:
            return 0
        inner = self.intermediate_size
        window = self.ssm_conv_kernel - 1
        if self.ssm_kind == "mamba":
            per_layer = inner * (self.ssm_state_size + window)
        else:
            per_layer = inner * self.ssm_state_size + (inner + 2 * self.ssm_groups * self.ssm_state_size) * window
        return self.num_hidden_layers * -(-per_layer // max(1, tensor_parallel))

    def _ssm_mixer_params(self) -> int:
        """One Mamba or Mamba-2 mixer (HF MambaMixer / Mamba2Mixer)."""
        h, inner, n, k = self.hidden_size, self.intermediate_size, self.ssm_state_size, self.ssm_conv_kernel
        bias = self.ssm_proj_bias
        if self.ssm_kind == "mamba":
            r = self.ssm_time_step_rank
            in_proj = h * 2 * inner + (2 * inner if bias else 0)
            conv = inner * k + (inner if self.ssm_conv_bias else 0)
            x_proj = inner * (r + 2 * n)
            dt_proj = r * inner + inner
            out_proj = inner * h + (h if bias else 0)
            return in_proj + conv + x_proj + dt_proj + inner * n + inner + out_proj  # + A_log and D
        heads, groups = self.ssm_heads, self.ssm_groups
        conv_channels = inner + 2 * groups * n
        projection = 2 * inner + 2 * groups * n + heads
        in_proj = h * projection + (projection if bias else 0)
        conv = conv_channels * k + (conv_channels if self.ssm_conv_bias else 0)
        out_proj = inner * h + (h if bias else 0)
        return in_proj + conv + 3 * heads + inner + out_proj  # dt_bias, A_log, D; the gated RMSNorm

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
        if not self.is_moe:
            return False
        if self.decoder_sparse_step:
            return index not in self.mlp_only_layers and (index + 1) % self.decoder_sparse_step == 0
        return index >= self.first_k_dense_replace and index % max(1, self.moe_layer_freq) == 0

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
        if not self.qk_norm:
            qk_norm = 0
        elif self.qk_norm_head_dim_only:
            qk_norm = 2 * d
        else:
            qk_norm = a * d + kv * d
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
        if self.ssm_kind:
            return ParameterCounts(
                embedding=v * h,
                lm_head=0 if self.tie_word_embeddings else v * h,
                attention=layers * self._ssm_mixer_params(),
                mlp_dense=0,
                experts=0,
                shared_experts=0,
                router=0,
                norms=layers * h + h,
                active_experts=0,
            )
        shared = self.n_shared_experts * per_expert
        if self.shared_expert_intermediate_size:
            shared += self._mlp_params(self.shared_expert_intermediate_size) + h  # the expert and its gate
        return ParameterCounts(
            embedding=v * h + self.learned_position_embeddings * h,
            lm_head=(0 if self.tie_word_embeddings else v * h) + (v if self.lm_head_bias else 0),
            attention=layers * self._attention_params(),
            mlp_dense=dense_layers * self._mlp_params(self.intermediate_size),
            experts=experts,
            shared_experts=moe_layers * shared,
            router=router,
            norms=layers * self.norms_per_layer * norm + norm,
            active_experts=moe_layers * min(self.num_experts_per_tok, self.num_local_experts) * per_expert,
            other=self.extra_parameters,
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
                    self.bad.append(FieldViolation(self._path(key), f"must be an integer, got {shown(value)}"))
                    return default
                if not low <= int(value) <= high:
                    got = shown(value)
                    self.bad.append(FieldViolation(self._path(key), f"must be from {low} to {high}, got {got}"))
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
            self.bad.append(FieldViolation(self._path(key), f"must be true or false, got {shown(value)}"))
            return default
        return value

    def _refuse(self, key: str, description: str) -> InvalidArgument:
        return InvalidArgument([FieldViolation(self._path(key), description)])

    def _family(self, model_type: str) -> tuple[str, ...]:
        """Refuse what cannot be read; the assumption lines for what is read generically."""
        supported = ", ".join(families.SUPPORTED)
        if model_type in families.STATE_SPACE_TYPES:
            raise self._refuse(
                "model_type",
                f"model_type {model_type!r} is not supported yet: state-space and hybrid models keep a fixed "
                f"state per sequence rather than a KV cache; supported: {supported}",
            )
        if not model_type or model_type in families.DECODER_TYPES:
            return ()
        missing = [k for k in families.GENERIC_FIELDS if self.c.get(k) is None]
        if missing:
            raise self._refuse(
                "model_type",
                f"model_type {model_type!r} is not supported; supported: {supported} (or give "
                f"{', '.join(families.GENERIC_FIELDS)} to size it as a generic Llama-style decoder)",
            )
        return (
            f"model_type {model_type!r} is not a family accelplan knows: sized as a generic Llama-style decoder "
            "(gated MLP, RMSNorm, no biases, rotary positions) from its generic fields.",
        )

    def _multimodal(self, model_type: str) -> Architecture:
        """The text model of a multimodal config, plus its vision tower where the config gives its shape."""
        c = self.c
        raw = c.get("text_config")
        if raw is None and model_type == "qwen2_vl":
            raw = {k: v for k, v in c.items() if k != "vision_config"}  # older Qwen2-VL configs are flat
            raw["model_type"] = "qwen2"
        if not isinstance(raw, dict):
            raise self._refuse("text_config", f"required for model_type {model_type!r} (the language model's config)")
        text = dict(raw)
        text_type = str(text.get("model_type") or families.MULTIMODAL_TYPES.get(model_type, ""))
        text["model_type"] = text_type
        for key, value in families.TEXT_DEFAULTS.get(text_type, {}).items():
            text.setdefault(key, value)
        if "tie_word_embeddings" in c and "tie_word_embeddings" not in text:
            text["tie_word_embeddings"] = c["tie_word_embeddings"]
        prefix = self.prefix if raw is not c.get("text_config") else f"{self.prefix}.text_config"
        arch = _Parser(text, prefix).parse()
        notes = [f"Multimodal model_type {model_type!r}: the language model ({text_type}) is read from text_config."]
        vision = c.get("vision_config")
        tower = families.vision_tower_parameters(vision) if isinstance(vision, dict) else None
        extra = 0
        if tower is not None and isinstance(vision, dict):
            params, description = tower
            projector = families.projector_parameters(
                model_type, c, int(vision.get("hidden_size") or 768), arch.hidden_size
            )
            extra = params + projector
            notes.append(
                f"Counted the {description}: {params:,} parameters, and the multimodal projector: {projector:,}; "
                "KV cache, activations and speed are the language model's."
            )
        else:
            if isinstance(vision, dict):
                kind = str(vision.get("model_type") or f"{model_type or 'this model'}'s vision_config")
            else:
                kind = "no vision_config given"
            notes.append(
                f"The vision tower ({kind}) is not counted: accelplan does not read its shape; "
                "every figure is the language model's alone."
            )
        if text_type == "mllama_text_model":
            notes.append("Its cross-attention layers are counted as ordinary decoder layers.")
        return replace(arch, extra_parameters=extra, notes=(*arch.notes, *notes))

    def _ssm(self, model_type: str) -> Architecture:
        """Mamba / Falcon-Mamba (MambaConfig) or Mamba-2 (Mamba2Config), with those classes' defaults."""
        mamba2 = model_type == "mamba2"
        layers = self._int("num_hidden_layers", "n_layer", required=True, low=1, high=MAX_LAYERS)
        hidden = self._int("hidden_size", "d_model", required=True, low=1)
        vocab = self._int("vocab_size", required=True, low=1)
        state = self._int("state_size", default=128 if mamba2 else 16, low=1, high=1 << 16)
        expand = self._int("expand", default=2, low=1, high=64)
        inner = self._int("intermediate_size", "d_inner", default=expand * hidden, low=1)
        kernel = self._int("conv_kernel", default=4, low=1, high=1024)
        heads = groups = rank = 0
        if mamba2:
            head_dim = self._int("head_dim", default=64, low=1)
            heads = self._int("num_heads", default=max(1, inner // head_dim), low=1, high=MAX_HEADS)
            groups = self._int("n_groups", default=8, low=1, high=MAX_HEADS)
            if heads * head_dim != inner:
                self.bad.append(
                    FieldViolation(self._path("num_heads"), f"num_heads x head_dim must equal d_inner ({inner})")
                )
        else:
            raw_rank = self.c.get("time_step_rank")
            rank = -(-hidden // 16) if raw_rank in (None, "auto") else self._int("time_step_rank", low=1)
        if self.bad:
            raise InvalidArgument(self.bad)
        kind = "mamba2" if mamba2 else "mamba"
        return Architecture(
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=1,
            num_key_value_heads=1,
            head_dim=0,  # no attention: no KV cache, no attention FLOPs
            intermediate_size=inner,
            vocab_size=vocab,
            tie_word_embeddings=self._bool("tie_word_embeddings", default=not mamba2),
            model_type=model_type,
            norms_per_layer=1,
            max_position_embeddings=0,
            ssm_kind=kind,
            ssm_state_size=state,
            ssm_conv_kernel=kernel,
            ssm_time_step_rank=rank,
            ssm_heads=heads,
            ssm_groups=groups,
            ssm_conv_bias=self._bool("use_conv_bias", default=True),
            ssm_proj_bias=self._bool("use_bias", default=False),
            notes=(
                f"model_type {model_type!r}: a state-space model ({layers} {kind} mixers); no KV cache, a fixed "
                f"recurrent state per sequence (SSM state of {state} per channel plus a {kernel}-token "
                "convolution window) held at the KV-cache precision.",
            ),
        )

    def parse(self) -> Architecture:
        c = self.c
        model_type = str(c.get("model_type") or "")
        nested = isinstance(c.get("text_config"), dict) and "num_hidden_layers" not in c
        if model_type in families.MULTIMODAL_TYPES or nested:
            return self._multimodal(model_type)
        if model_type in families.SSM_TYPES:
            return self._ssm(model_type)
        notes = self._family(model_type)
        if model_type == "dbrx":
            self._flatten_dbrx()
        layers = self._int(
            "num_hidden_layers", "n_layers", "num_layers", "n_layer", required=True, low=1, high=MAX_LAYERS
        )
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
        gpt = model_type in ("gpt2", "gptj")
        intermediate = self._int(
            "intermediate_size", "ffn_hidden_size", "n_inner", default=4 * hidden if falcon or gpt else 0, low=0
        )
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
        gemma3 = model_type == "gemma3_text"
        cohere = model_type == "cohere"
        new_falcon = falcon and bool(c.get("new_decoder_architecture"))
        # Plain (non-gated) MLPs with biases and LayerNorms with biases: GPT-2, GPT-J, GPT-NeoX, StarCoder2.
        plain = falcon or gpt or model_type in ("gpt_neox", "starcoder2")
        layer_norm_bias = plain
        use_bias = model_type == "starcoder2" and self._bool("use_bias", default=True)
        neox_bias = model_type == "gpt_neox" and self._bool("attention_bias", default=True)
        qwen3 = model_type in ("qwen3", "qwen3_moe")
        qwen_moe = model_type in ("qwen2_moe", "qwen3_moe")
        if gemma2 or gemma3:
            norms_per_layer = 4
        elif cohere or (falcon and not new_falcon) or model_type == "gptj":
            norms_per_layer = 1
        else:
            norms_per_layer = 2
        arch = Architecture(
            num_hidden_layers=layers,
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=head_dim,
            intermediate_size=intermediate,
            vocab_size=vocab,
            tie_word_embeddings=self._bool("tie_word_embeddings", default=model_type in families.TIED_BY_DEFAULT),
            model_type=model_type,
            attention_bias=(self._bool("attention_bias") and model_type != "gpt_neox")
            or (falcon and self._bool("bias"))
            or use_bias
            or neox_bias
            or model_type == "gpt2",
            qkv_bias=model_type in ("qwen2", "qwen2_moe") or self._bool("qkv_bias"),
            mlp_bias=self._bool("mlp_bias")
            or (falcon and self._bool("bias"))
            or use_bias
            or model_type in ("gpt2", "gptj", "gpt_neox"),
            gated_mlp=not plain,
            norms_per_layer=norms_per_layer,
            norm_has_bias=layer_norm_bias,
            qk_norm=self._bool("use_qk_norm") or qwen3 or gemma3 or model_type == "olmo2",
            qk_norm_head_dim_only=qwen3 or gemma3,
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
            learned_position_embeddings=self._int("n_positions", default=1024, low=1, high=1 << 24)
            if model_type == "gpt2"
            else 0,
            lm_head_bias=model_type == "gptj",
            shared_expert_intermediate_size=self._int("shared_expert_intermediate_size", low=0)
            if model_type == "qwen2_moe"
            else 0,
            decoder_sparse_step=self._int("decoder_sparse_step", default=1, low=1, high=MAX_LAYERS) if qwen_moe else 0,
            mlp_only_layers=self._layer_list("mlp_only_layers", layers) if qwen_moe else (),
            notes=notes,
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

    def _layer_list(self, key: str, layers: int) -> tuple[int, ...]:
        raw = self.c.get(key)
        if raw is None:
            return ()
        if not isinstance(raw, list) or any(
            isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < layers for i in raw
        ):
            self.bad.append(FieldViolation(self._path(key), f"must list layer indices from 0 to {layers - 1}"))
            return ()
        return tuple(raw)

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
        if model_type == "gemma3_text" and not pattern:
            pattern = 6  # Gemma 3: five sliding layers, then a global one (Gemma3TextConfig's default)
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
