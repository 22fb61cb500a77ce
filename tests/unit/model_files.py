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


# Rows a multiple of 256 wide, as GGUF's K-quants need (llama.cpp keeps narrower tensors in other types).
GGUF_LLAMA: dict[str, Any] = dict(TINY_LLAMA, hidden_size=256, intermediate_size=512)


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


def write_gguf(path: Path, qtype_name: str, config: dict[str, Any] = GGUF_LLAMA) -> int:
    """A llama GGUF with gguf's writer: 2-D weights in qtype (Q8_0 or Q4_K), norms in F32; returns the count."""
    import gguf

    qtype = gguf.GGMLQuantizationType[qtype_name]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(config["num_hidden_layers"])
    w.add_embedding_length(config["hidden_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_context_length(config["max_position_embeddings"])
    w.add_vocab_size(config["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if qtype_name == "Q8_0" else gguf.LlamaFileType.MOSTLY_Q4_K_M)
    gg = {"model.embed_tokens.weight": "token_embd.weight", "lm_head.weight": "output.weight"}
    total = 0
    for name, shape in llama_shapes(config).items():
        data = (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) % 5) / 5
        total += data.size
        out = gg.get(name, name)
        if len(shape) == 1:
            w.add_tensor(out, data)
        elif qtype_name == "Q8_0":
            w.add_tensor(out, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:  # Q4_K blocks (256 weights in 144 bytes); zero blocks are valid ones
            raw = np.zeros(gguf.quants.quant_shape_to_byte_shape(shape, qtype), dtype=np.uint8)
            w.add_tensor(out, raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return total


def write_onnx(path: Path) -> int:
    """A two-layer MLP graph in ONNX with FP16 initializers; returns the parameter count."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shapes = {"w1": (32, 64), "b1": (64,), "w2": (64, 16), "b2": (16,)}
    inits = [numpy_helper.from_array(np.ones(s, dtype=np.float16), name=n) for n, s in shapes.items()]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 16])],
        inits,
    )
    model = helper.make_model(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return sum(int(np.prod(s)) for s in shapes.values())


def hf_shapes(c: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a Hugging Face checkpoint of model_type llama, mistral, qwen2, mixtral,
    gemma2 or phi3 (the layouts of transformers' modeling files)."""
    t = c.get("model_type")
    h, i, n = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    hd = c.get("head_dim") or h // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, (c.get("num_key_value_heads") or c["num_attention_heads"]) * hd
    shapes = llama_shapes(dict(c, head_dim=hd, num_key_value_heads=kv // hd))
    for layer in range(n):
        p = f"model.layers.{layer}."
        if t == "qwen2" or c.get("attention_bias"):
            shapes |= {
                p + "self_attn.q_proj.bias": (q,),
                p + "self_attn.k_proj.bias": (kv,),
                p + "self_attn.v_proj.bias": (kv,),
            }
        if t == "mixtral":  # the dense MLP becomes a router and num_local_experts experts
            for k in ("gate_proj", "up_proj", "down_proj"):
                del shapes[p + f"mlp.{k}.weight"]
            shapes[p + "block_sparse_moe.gate.weight"] = (c["num_local_experts"], h)
            for e in range(c["num_local_experts"]):
                x = p + f"block_sparse_moe.experts.{e}."
                shapes |= {x + "w1.weight": (i, h), x + "w2.weight": (h, i), x + "w3.weight": (i, h)}
        if t == "gemma2":  # norms around the MLP too
            shapes |= {p + "pre_feedforward_layernorm.weight": (h,), p + "post_feedforward_layernorm.weight": (h,)}
        if t == "phi3":  # fused projections
            for k in ("q_proj", "k_proj", "v_proj"):
                del shapes[p + f"self_attn.{k}.weight"]
            del shapes[p + "mlp.gate_proj.weight"], shapes[p + "mlp.up_proj.weight"]
            shapes |= {p + "self_attn.qkv_proj.weight": (q + 2 * kv, h), p + "mlp.gate_up_proj.weight": (2 * i, h)}
    if t == "gemma2" and c.get("tie_word_embeddings", True):
        shapes.pop("lm_head.weight", None)
    return shapes


def hf_config(arch: dict[str, Any]) -> dict[str, Any]:
    """A config.json for a catalogue architecture (the catalogue keeps config.json's own field names)."""
    return dict(arch, architectures=["LlamaForCausalLM"], torch_dtype="bfloat16")


def write_sparse_checkpoint(folder: Path, config: dict[str, Any]) -> int:
    """A full-size bf16 safetensors checkpoint whose data are a hole in a sparse file (no disk, no RAM).

    The header is the format's documented layout (8-byte little-endian length, JSON, data); safetensors'
    own reader must accept it, so the file is as real as a downloaded one except for the zero weights.
    """
    import struct

    shapes = hf_shapes(config)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    with (folder / "model.safetensors").open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return offset // 2


def write_samples(folder: Path) -> None:
    """The README's sample files: ``tiny-q4k.gguf`` and ``llama-3.1-8b-shaped/`` (sparse, its catalogue row's shape)."""
    catalog = Path(__file__).resolve().parents[2] / "server/src/accelplan_server/data/models.json"
    row = next(m for m in json.loads(catalog.read_text())["models"] if m["id"] == "llama-3.1-8b")
    write_gguf(folder / "tiny-q4k.gguf", "Q4_K")
    write_sparse_checkpoint(folder / "llama-3.1-8b-shaped", hf_config(row["architecture"]))


if __name__ == "__main__":
    import sys

    write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
