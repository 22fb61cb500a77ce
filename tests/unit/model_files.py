"""Small real model files written with the formats' own libraries, and their expected parameter counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

TINY_LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 176,
    "vocab_size": 256,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def llama_shapes(c: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a Hugging Face LlamaForCausalLM checkpoint for config c."""
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * c.get("head_dim", h // c["num_attention_heads"])
    q = c["num_attention_heads"] * c.get("head_dim", h // c["num_attention_heads"])
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes |= {
            p + "self_attn.q_proj.weight": (q, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, q),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
            p + "input_layernorm.weight": (h,),
            p + "post_attention_layernorm.weight": (h,),
        }
    if not c.get("tie_word_embeddings"):
        shapes["lm_head.weight"] = (v, h)
    return shapes


def llama_count(c: dict[str, Any]) -> int:
    """Parameters of that checkpoint, by the formula (independent of the shapes above)."""
    h, i, v, n = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    hd = c.get("head_dim", h // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
    return v * h + n * per_layer + h + (0 if c.get("tie_word_embeddings") else v * h)


def _bf16(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """A bfloat16 array (ml_dtypes, numpy's bfloat16) of small values."""
    import ml_dtypes

    return (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) % 7 / 7).astype(ml_dtypes.bfloat16)


def write_llama(folder: Path, config: dict[str, Any] = TINY_LLAMA, shards: int = 1) -> int:
    """A bf16 Llama-shaped checkpoint with safetensors' writer (+ config.json); returns the parameter count."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    shapes = llama_shapes(config)
    names = list(shapes)
    if shards == 1:
        save_file({n: _bf16(shapes[n]) for n in names}, str(folder / "model.safetensors"))
    else:
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            save_file({n: _bf16(shapes[n]) for n in part}, str(folder / fname))
            weight_map |= {n: fname for n in part}
        index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return llama_count(config)
