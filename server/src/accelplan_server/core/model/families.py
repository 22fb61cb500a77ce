"""What transformers does per model_type that config.json leaves unsaid.

config.json omits keys that equal the config class's default, and the classes
disagree: Gemma ties the LM head to the embeddings unless told otherwise, Llama
does not. These tables hold those class defaults (transformers 4.5x,
``models/<type>/configuration_<type>.py``), the families whose layouts the parser
knows, and the parameter counts of the vision towers that multimodal configs
describe in ``vision_config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TIED_BY_DEFAULT = frozenset({"gemma", "gemma2", "gemma3_text", "starcoder2", "gpt2", "cohere"})
"""model_types whose config class defaults tie_word_embeddings to True (GemmaConfig, Gemma2Config,
Gemma3TextConfig, Starcoder2Config, CohereConfig; GPT2Config inherits PretrainedConfig's True).
FalconConfig inherits True too, but Falcon checkpoints store lm_head.weight, and the catalogue
counts what they store, so Falcon keeps an explicit tie_word_embeddings."""

TEXT_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
    },
    "gemma3_text": {
        "vocab_size": 262208,
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
    },
    "mllama_text_model": {
        "vocab_size": 128256,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
    },
}
"""Class defaults of the text configs that multimodal config.json files nest sparsely
(LlamaConfig, Gemma3TextConfig, MllamaTextConfig): applied to a nested text_config only,
since a top-level config.json lists its own shape."""

DECODER_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "gemma",
        "gemma2",
        "gemma3_text",
        "phi3",
        "cohere",
        "deepseek_v2",
        "deepseek_v3",
        "falcon",
        "dbrx",
        "gpt_neox",
        "gpt2",
        "gptj",
        "starcoder2",
        "olmo2",
        "mllama_text_model",
    }
)
"""Decoder-only families whose layout the parser reads exactly."""

MULTIMODAL_TYPES = {"gemma3": "gemma3_text", "llava": "llama", "mllama": "mllama_text_model", "qwen2_vl": "qwen2"}
"""Multimodal wrappers: model_type -> the text model's type when text_config does not name it."""

SSM_TYPES = frozenset({"mamba", "falcon_mamba", "mamba2"})
"""Pure state-space models the parser sizes: no KV cache, a fixed state per sequence."""

STATE_SPACE_TYPES = frozenset(
    {"jamba", "zamba", "zamba2", "rwkv", "recurrent_gemma", "bamba", "nemotron_h", "granitemoehybrid", "falcon_h1"}
)
"""Hybrid and recurrent families not sized yet (refused by name)."""

SUPPORTED = tuple(sorted(DECODER_TYPES | MULTIMODAL_TYPES.keys() | SSM_TYPES))
"""Every model_type the parser accepts by name."""

GENERIC_FIELDS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
"""The fields a Llama-style decoder needs: with all of them an unknown model_type is sized generically."""


def _int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _vit_layers(hidden: int, inner: int, layers: int) -> int:
    """A ViT encoder stack: two LayerNorms, q/k/v/o with biases and a 2-layer MLP with biases per layer."""
    return layers * (2 * 2 * hidden + 4 * (hidden * hidden + hidden) + hidden * inner + inner + inner * hidden + hidden)


def vision_tower_parameters(vision: Mapping[str, Any]) -> tuple[int, str] | None:
    """(parameters, description) of a SigLIP or CLIP vision tower from its vision_config; None for other kinds.

    SigLIP (SiglipVisionConfig defaults): patch conv with bias, a position row per patch, the
    encoder, a post LayerNorm (no pooling head when vision_use_head is false). CLIP
    (CLIPVisionConfig defaults): class embedding, patch conv without bias, a position row per
    patch plus the class token, pre and post LayerNorms, the encoder.
    """
    kind = str(vision.get("model_type") or "")
    if kind not in ("siglip_vision_model", "clip_vision_model"):
        return None
    siglip = kind == "siglip_vision_model"
    hidden = _int(vision, "hidden_size", 768)
    inner = _int(vision, "intermediate_size", 3072)
    layers = _int(vision, "num_hidden_layers", 12)
    patch = _int(vision, "patch_size", 16 if siglip else 32)
    image = _int(vision, "image_size", 224)
    channels = _int(vision, "num_channels", 3)
    patches = (image // patch) ** 2
    encoder = _vit_layers(hidden, inner, layers)
    if siglip:
        if vision.get("vision_use_head", True) is not False:
            return None  # the attention-pooling head's shape is not in the config: not counted
        total = channels * patch * patch * hidden + hidden + patches * hidden + encoder + 2 * hidden
    else:
        total = hidden + channels * patch * patch * hidden + (patches + 1) * hidden + 2 * hidden + encoder + 2 * hidden
    name = "SigLIP" if siglip else "CLIP"
    return total, f"{name} vision tower ({layers} layers of width {hidden}, {image}px images in {patch}px patches)"


def projector_parameters(model_type: str, config: Mapping[str, Any], vision_hidden: int, text_hidden: int) -> int:
    """The multimodal projector between the vision tower and the text model.

    Gemma 3: one vision_hidden x text_hidden matrix and an RMSNorm of vision_hidden.
    Llava: two Linear layers with biases, vision_hidden -> text_hidden -> text_hidden.
    """
    if model_type == "gemma3":
        return vision_hidden * text_hidden + vision_hidden
    if model_type == "llava":
        bias = config.get("multimodal_projector_bias", True) is not False
        return vision_hidden * text_hidden + text_hidden * text_hidden + (2 * text_hidden if bias else 0)
    return 0
