import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.memory.serving import (
    RUNTIME_OVERHEAD_BYTES,
    ServingShape,
    estimate_capacity,
    estimate_serving_memory,
    kv_bytes_per_token,
)
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat, weights_bytes
from accelplan_server.core.quantization import Quantization as Q

GIB = 2**30


def llama8b(catalog: Catalog) -> Architecture:
    return Architecture.from_config(catalog.model("llama-3.1-8b").architecture or {})


def test_group_quantization_overhead(catalog: Catalog) -> None:
    a = llama8b(catalog)
    p = a.parameters
    int4 = weights_bytes(p, WeightFormat(Q.INT4))  # g128, FP16 scale + 4-bit zero: 4 + 20/128 bits
    assert int4 == -(-p.linear * (4 * 128 + 20) // (8 * 128)) + (p.total - p.linear) * 2
    sym8 = weights_bytes(p, WeightFormat(Q.INT8, 64, symmetric=True))  # 8 + 16/64 bits
    assert sym8 == -(-p.linear * (8 * 64 + 16) // (8 * 64)) + (p.total - p.linear) * 2
    assert weights_bytes(p, WeightFormat(Q.FP8)) == p.linear + (p.total - p.linear) * 2
    assert weights_bytes(p, WeightFormat(Q.NONE)) == p.total * 4


def test_breakdown_adds_up(catalog: Catalog) -> None:
    a = llama8b(catalog)
    m = estimate_serving_memory(a, WeightFormat(Q.BFLOAT16), ServingShape(context_length=8192, batch_size=4))
    assert m.weights_bytes == 8_030_261_248 * 2
    assert m.kv_cache_bytes == 4 * 8192 * 131072
    assert m.kv_cache_bytes_per_token == 131072
    assert m.overhead_bytes == RUNTIME_OVERHEAD_BYTES
    assert m.total_bytes == m.weights_bytes + m.kv_cache_bytes + m.activation_bytes + m.overhead_bytes


def test_kv_cache_quantization(catalog: Catalog) -> None:
    a = llama8b(catalog)
    fp8 = estimate_serving_memory(a, WeightFormat(Q.BFLOAT16), ServingShape(kv_bits=8))
    assert fp8.kv_cache_bytes_per_token == 65536


def test_capacity_inverts_memory(catalog: Catalog) -> None:
    a = llama8b(catalog)
    fmt = WeightFormat(Q.BFLOAT16)
    cap = estimate_capacity(a, fmt, ServingShape(context_length=8192), 80 * GIB, 0.9)
    assert cap.usable_bytes == int(80 * GIB * 0.9)
    assert cap.kv_cache_tokens == cap.kv_budget_bytes // 131072
    assert cap.max_concurrent_sequences == cap.kv_budget_bytes // (8192 * 131072)
    assert cap.max_context_length == 131072  # capped at max_position_embeddings
    small = estimate_capacity(a, fmt, ServingShape(batch_size=64), 24 * GIB, 0.9)
    assert small.max_context_length == small.kv_budget_bytes // (64 * 131072)
    assert estimate_capacity(a, fmt, ServingShape(), 8 * GIB, 0.9).max_context_length == 0


def test_tensor_parallel_splits_weights_and_kv(catalog: Catalog) -> None:
    a = Architecture.from_config(catalog.model("llama-3.1-70b").architecture or {})
    one = estimate_serving_memory(a, WeightFormat(Q.BFLOAT16), ServingShape())
    eight = estimate_serving_memory(a, WeightFormat(Q.BFLOAT16), ServingShape(tensor_parallel=8))
    assert eight.weights_bytes == pytest.approx(one.weights_bytes / 8, abs=1)
    assert eight.kv_cache_bytes_per_token == kv_bytes_per_token(a, 16) // 8
