import json

import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.errors import InvalidArgument
from accelplan_server.core.memory.serving import kv_bytes_per_sequence, kv_bytes_per_token
from accelplan_server.core.model.architecture import Architecture

# Totals published on the models' cards / safetensors indexes (see models.json sources).
PUBLISHED = {
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "mistral-7b-v0.3": 7_248_023_552,
    "mixtral-8x7b": 46_702_792_704,
    "gemma-2-2b": 2_614_341_888,
    "gemma-2-9b": 9_241_705_984,
    "gemma-2-27b": 27_227_128_320,
    "phi-3-mini-4k": 3_821_079_552,
    "qwen2.5-7b": 7_615_616_512,
    "qwen2.5-72b": 72_706_203_648,
}


def arch(catalog: Catalog, model_id: str) -> Architecture:
    config = catalog.model(model_id).architecture
    assert config is not None
    return Architecture.from_config(config)


@pytest.mark.parametrize(("model_id", "count"), PUBLISHED.items())
def test_published_counts_are_exact(catalog: Catalog, model_id: str, count: int) -> None:
    assert arch(catalog, model_id).parameters.total == count


def test_every_catalogue_transformer_matches_its_row(catalog: Catalog) -> None:
    for m in catalog.models:
        if m.architecture:
            p = Architecture.from_config(m.architecture).parameters
            assert (p.total, p.active) == (m.parameter_count, m.active_parameter_count), m.id


def test_moe_active_parameters(catalog: Catalog) -> None:
    # Mixtral: 2 of 8 experts per token; DeepSeek V3: 8 of 256 routed plus the shared expert.
    assert arch(catalog, "mixtral-8x7b").parameters.active == 12_879_925_248
    ds = arch(catalog, "deepseek-v3").parameters
    assert ds.total == 671_026_419_200 and ds.active == 37_552_297_472


# KV-cache bytes per token at 16 bits: 2 (K and V) x layers x KV heads x head_dim x 2 bytes,
# or for MLA layers x (kv_lora_rank + qk_rope_head_dim) x 2 bytes.
KV_PER_TOKEN = {
    "llama-3.1-8b": 2 * 32 * 8 * 128 * 2,
    "llama-3.1-70b": 2 * 80 * 8 * 128 * 2,
    "llama-3.1-405b": 2 * 126 * 8 * 128 * 2,
    "mixtral-8x7b": 2 * 32 * 8 * 128 * 2,
    "gemma-2-9b": 2 * 42 * 8 * 256 * 2,  # head_dim 256 != 3584 / 16
    "gemma-2-27b": 2 * 46 * 16 * 128 * 2,  # head_dim 128 != 4608 / 32
    "phi-3-mini-4k": 2 * 32 * 32 * 96 * 2,
    "qwen2.5-7b": 2 * 28 * 4 * 128 * 2,
    "deepseek-v3": 61 * (512 + 64) * 2,  # MLA latent + rope key, not full heads
    "falcon-7b": 2 * 32 * 1 * 64 * 2,  # multi-query: one KV head
}


@pytest.mark.parametrize(("model_id", "per_token"), KV_PER_TOKEN.items())
def test_kv_bytes_per_token_exact(catalog: Catalog, model_id: str, per_token: int) -> None:
    assert kv_bytes_per_token(arch(catalog, model_id), 16) == per_token


def test_gemma2_alternates_sliding_and_global_layers(catalog: Catalog) -> None:
    a = arch(catalog, "gemma-2-9b")
    assert a.sliding_layer_count == 21 and a.is_sliding_layer(0) and not a.is_sliding_layer(1)
    per_layer = 2 * 8 * 256 * 2
    assert kv_bytes_per_sequence(a, 8192, 16) == 21 * 8192 * per_layer + 21 * 4096 * per_layer
    assert kv_bytes_per_sequence(a, 1000, 16) == 42 * 1000 * per_layer


def test_llama_405b_with_16_kv_heads(catalog: Catalog) -> None:
    config = dict(catalog.model("llama-3.1-405b").architecture or {})
    base = Architecture.from_config(config).parameters.total
    config["num_key_value_heads"] = 16
    wider = Architecture.from_config(config)
    assert wider.parameters.total - base == 2 * 126 * 16384 * 8 * 128
    assert kv_bytes_per_token(wider, 16) == 2 * kv_bytes_per_token(
        Architecture.from_config(catalog.model("llama-3.1-405b").architecture or {}), 16
    )


def test_tensor_parallel_kv_heads_per_device(catalog: Catalog) -> None:
    a = arch(catalog, "llama-3.1-70b")  # 8 KV heads
    assert kv_bytes_per_token(a, 16, 4) == kv_bytes_per_token(a, 16) // 4
    assert kv_bytes_per_token(a, 16, 16) == kv_bytes_per_token(a, 16) // 8  # max(1, 8/16) = 1 head each


def test_tied_embeddings_and_qkv_bias(catalog: Catalog) -> None:
    one_b = arch(catalog, "llama-3.2-1b")
    assert one_b.tie_word_embeddings and one_b.parameters.lm_head == 0
    qwen = arch(catalog, "qwen2.5-7b")
    assert qwen.qkv_bias and not qwen.attention_bias


def test_hf_config_json_round_trip(catalog: Catalog) -> None:
    text = json.dumps(catalog.model("mistral-7b-v0.3").architecture)
    assert Architecture.from_config(json.loads(text)).parameters.total == 7_248_023_552


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (
            {
                "num_hidden_layers": 0,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "vocab_size": 10,
                "intermediate_size": 8,
            },
            "architecture.num_hidden_layers",
        ),
        (
            {
                "num_hidden_layers": 2,
                "hidden_size": 65,
                "num_attention_heads": 4,
                "vocab_size": 10,
                "intermediate_size": 8,
            },
            "architecture.num_attention_heads",
        ),
        (
            {
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "num_key_value_heads": 8,
                "vocab_size": 10,
                "intermediate_size": 8,
            },
            "architecture.num_key_value_heads",
        ),
        (
            {
                "num_hidden_layers": 2,
                "hidden_size": -64,
                "num_attention_heads": 4,
                "vocab_size": 10,
                "intermediate_size": 8,
            },
            "architecture.hidden_size",
        ),
        (
            {"hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 8},
            "architecture.num_hidden_layers",
        ),
        (
            {
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "vocab_size": "ten",
                "intermediate_size": 8,
            },
            "architecture.vocab_size",
        ),
        (
            {
                "num_hidden_layers": 2,
                "hidden_size": 64,
                "num_attention_heads": 4,
                "vocab_size": 10,
                "intermediate_size": 8,
                "num_local_experts": 4,
                "num_experts_per_tok": 8,
            },
            "architecture.num_experts_per_tok",
        ),
    ],
)
def test_bad_architectures_name_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        Architecture.from_config(config)
    assert field in {v.field for v in e.value.violations}


def test_head_dim_rescues_non_dividing_heads() -> None:
    a = Architecture.from_config(
        {
            "num_hidden_layers": 2,
            "hidden_size": 65,
            "num_attention_heads": 4,
            "head_dim": 16,
            "vocab_size": 10,
            "intermediate_size": 8,
        }
    )
    assert a.head_dim == 16
