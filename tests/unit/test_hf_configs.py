"""Issue 11 section 3: real config.json files read the way transformers reads them.

Each fixture under hf_configs/ is a model's config.json as published (its URL beside it) with
the model's published parameter total (safetensors index or model card, cited beside it).
"""

import json
from pathlib import Path
from typing import Any

import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.errors import InvalidArgument
from accelplan_server.core.memory.serving import ServingShape, estimate_serving_memory
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.quantization import Quantization as Q

FIXTURES = Path(__file__).parent / "hf_configs"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert data["source"].startswith("https://huggingface.co/") and data["published_total_source"]
    return data


SIZED = [
    "gemma-3-1b-pt",  # tie_word_embeddings absent: Gemma 3 ties by default; q/k norms; 4 norms per layer
    "gemma-3-4b-it",  # text_config with Gemma3TextConfig's defaults + SigLIP tower + projector
    "pythia-160m",  # GPT-NeoX: plain MLP, biases, LayerNorm biases
    "pythia-1.4b",
    "gpt2",  # n_layer / n_embd / n_head / n_inner naming, learned positions, tied head
    "starcoder2-3b",  # use_bias, plain MLP, tied by default
    "qwen1.5-moe-a2.7b",  # shared expert and its gate
    "qwen3-8b",  # q/k norms of head_dim
    "olmo-2-1124-7b",  # q/k norms over the whole projection
    "llava-1.5-7b-hf",  # sparse Llama text_config + CLIP tower + 2-layer projector
    "mamba-130m-hf",  # Mamba mixers, tied head (MambaConfig's default)
    "falcon-mamba-7b",  # Mamba mixers, untied head
    "mamba-codestral-7b-v0.1",  # Mamba-2 mixers (groups, heads, gated norm)
]


@pytest.mark.parametrize("name", SIZED)
def test_published_total_from_the_real_config(name: str) -> None:
    data = fixture(name)
    assert Architecture.from_config(data["config"]).parameters.total == data["published_total"]


def test_multimodal_says_what_was_counted() -> None:
    arch = Architecture.from_config(fixture("gemma-3-4b-it")["config"])
    assert any("SigLIP vision tower" in n and "416,866,032" in n for n in arch.notes)
    memory = estimate_serving_memory(arch, WeightFormat(Q.BFLOAT16), ServingShape())
    assert any("SigLIP vision tower" in n for n in memory.assumptions)
    # The KV cache is the text model's: 34 layers, 4 KV heads of 256, 5 of every 6 layers sliding (1,024 tokens).
    assert arch.num_hidden_layers == 34 and arch.num_key_value_heads == 4 and arch.sliding_window == 1024
    assert arch.sliding_layer_count == 34 - 34 // 6


def test_vision_tower_without_a_readable_shape_is_named_not_counted() -> None:
    config = fixture("llava-1.5-7b-hf")["config"]
    config = {**config, "vision_config": {"model_type": "pixtral"}}
    arch = Architecture.from_config(config)
    assert arch.parameters.other == 0
    assert any("vision tower (pixtral) is not counted" in n for n in arch.notes)


def test_state_space_models_hold_a_fixed_state_per_sequence_not_a_kv_cache() -> None:
    arch = Architecture.from_config(fixture("mamba-130m-hf")["config"])
    # 24 layers x d_inner 1536 x (state 16 + conv window 3) values, 16-bit.
    state = 24 * 1536 * (16 + 3) * 2
    short = estimate_serving_memory(arch, WeightFormat(Q.BFLOAT16), ServingShape(context_length=1024, batch_size=4))
    long = estimate_serving_memory(arch, WeightFormat(Q.BFLOAT16), ServingShape(context_length=65536, batch_size=4))
    assert short.kv_cache_bytes == long.kv_cache_bytes == 4 * state
    assert short.kv_cache_bytes_per_token == 0
    assert any("No KV cache: a recurrent state of" in n for n in short.assumptions)
    codestral = Architecture.from_config(fixture("mamba-codestral-7b-v0.1")["config"])
    # 64 layers x (d_inner 8192 x state 128 + (8192 + 2 x 8 x 128) x conv window 3).
    assert codestral.recurrent_state_elements() == 64 * (8192 * 128 + (8192 + 2 * 8 * 128) * 3)


@pytest.mark.parametrize("model_type", ["jamba", "zamba2", "rwkv"])
def test_hybrid_and_recurrent_models_are_refused_by_name(model_type: str) -> None:
    config = {"model_type": model_type, "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 65536}
    with pytest.raises(InvalidArgument) as e:
        Architecture.from_config(config)
    assert [v.field for v in e.value.violations] == ["architecture.model_type"]
    assert f"model_type {model_type!r} is not supported yet" in str(e.value)
    assert "required" not in str(e.value)


def test_unknown_model_type_is_refused_with_the_supported_list() -> None:
    with pytest.raises(InvalidArgument) as e:
        Architecture.from_config({"model_type": "mystery", "hidden_size": 1024, "num_hidden_layers": 4})
    message = str(e.value)
    assert "model_type 'mystery' is not supported" in message and "llama" in message and "qwen3" in message


def test_unknown_model_type_with_generic_fields_is_sized_with_an_assumption() -> None:
    config = {
        "model_type": "mystery",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
    }
    arch = Architecture.from_config(config)
    llama = Architecture.from_config({**config, "model_type": "llama"})
    assert arch.parameters.total == llama.parameters.total
    assert any("generic Llama-style decoder" in n for n in arch.notes)


def test_llama_3_2_vision_sizes_its_text_model_and_says_the_tower_is_not_counted() -> None:
    # meta-llama/Llama-3.2-11B-Vision config.json, the fields that shape the model.
    config = {
        "model_type": "mllama",
        "text_config": {
            "model_type": "mllama_text_model",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_attention_heads": 32,
            "num_hidden_layers": 40,
            "num_key_value_heads": 8,
            "vocab_size": 128256,
            "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38],
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
        },
        "vision_config": {"model_type": "mllama_vision_model", "hidden_size": 1280, "num_hidden_layers": 32},
    }
    arch = Architecture.from_config(config)
    assert arch.num_hidden_layers == 40 and arch.parameters.other == 0
    assert any("vision tower (mllama_vision_model) is not counted" in n for n in arch.notes)
    assert any("cross-attention layers are counted as ordinary decoder layers" in n for n in arch.notes)


def test_flat_qwen2_vl_config_is_read_as_its_qwen2_text_model(catalog: Catalog) -> None:
    # Qwen/Qwen2-VL-7B-Instruct config.json keeps the text fields at the top level.
    config = {
        "model_type": "qwen2_vl",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_attention_heads": 28,
        "num_hidden_layers": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": False,
        "vision_config": {"depth": 32, "embed_dim": 1280, "num_heads": 16, "patch_size": 14},
    }
    arch = Architecture.from_config(config)
    qwen2_5_7b = catalog.model("qwen2.5-7b")  # the same text shapes, published total 7,615,616,512
    assert arch.parameters.total == qwen2_5_7b.parameter_count
    assert any("vision tower (qwen2_vl's vision_config) is not counted" in n for n in arch.notes)
