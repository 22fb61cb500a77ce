import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.hardware.specs import DeviceSpecs
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat, bytes_read_per_token, weights_bytes
from accelplan_server.core.planning.roofline import (
    ALLREDUCE_LATENCY_SECONDS,
    Bound,
    Efficiency,
    Workload,
    estimate_performance,
)
from accelplan_server.core.quantization import Quantization as Q

H100 = DeviceSpecs(80 * 2**30, 3350.0, {"bf16": 989.0, "fp16": 989.0, "fp8": 1979.0}, "H100")
NO_OVERHEAD = Efficiency(decode_overhead_seconds_per_layer=0.0)


def llama8b(catalog: Catalog) -> Architecture:
    return Architecture.from_config(catalog.model("llama-3.1-8b").architecture or {})


def work(a: Architecture, batch: int = 1, level: Q = Q.BFLOAT16, prompt: int = 0, output: int = 2) -> Workload:
    return Workload(a.parameters, WeightFormat(level), a, 16, batch, prompt, output)


def test_batch_1_is_memory_bound_and_reads_weights_once(catalog: Catalog) -> None:
    a = llama8b(catalog)
    perf = estimate_performance(
        work(a), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0, efficiency=NO_OVERHEAD
    )
    assert perf.bound is Bound.MEMORY_BANDWIDTH
    read = bytes_read_per_token(a.parameters, WeightFormat(Q.BFLOAT16), tied=False)
    assert read == (a.parameters.total - a.parameters.embedding) * 2  # the embedding table is looked up, not read
    kv = 1 * 32 * 2 * 8 * 128 * 2  # one token of context on average (output 2 from an empty prompt)
    assert perf.decode_seconds_per_token == pytest.approx((read + kv) / (3350e9 * NO_OVERHEAD.decode_mbu))


def test_large_batch_becomes_compute_bound(catalog: Catalog) -> None:
    perf = estimate_performance(
        work(llama8b(catalog), batch=1024), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0
    )
    assert perf.bound is Bound.COMPUTE
    assert perf.decode_tokens_per_second_total > 100 * perf.decode_tokens_per_second_per_sequence


def test_tensor_parallel_divides_reads_and_adds_all_reduces(catalog: Catalog) -> None:
    a = llama8b(catalog)
    one = estimate_performance(
        work(a), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=900, efficiency=NO_OVERHEAD
    )
    four = estimate_performance(
        work(a), [H100] * 4, tensor_parallel=4, pipeline_parallel=1, link_gbps=900, efficiency=NO_OVERHEAD
    )
    assert four.memory_seconds == pytest.approx(one.memory_seconds / 4, rel=1e-6)
    message = 4096 * 2
    assert four.communication_seconds == pytest.approx(
        2 * 32 * (ALLREDUCE_LATENCY_SECONDS + 2 * 3 / 4 * message / 900e9)
    )


def test_pipeline_stages_add_up(catalog: Catalog) -> None:
    a = llama8b(catalog)
    one = estimate_performance(work(a), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    two = estimate_performance(work(a), [H100] * 2, tensor_parallel=1, pipeline_parallel=2, link_gbps=0)
    assert two.decode_seconds_per_token == pytest.approx(one.decode_seconds_per_token)


def test_moe_speed_from_active_memory_from_total(catalog: Catalog) -> None:
    mixtral = Architecture.from_config(catalog.model("mixtral-8x7b").architecture or {})
    fmt = WeightFormat(Q.BFLOAT16)
    read = bytes_read_per_token(mixtral.parameters, fmt, tied=False)
    assert read < weights_bytes(mixtral.parameters, fmt) / 3
    batch_1 = estimate_performance(work(mixtral), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    batch_32 = estimate_performance(
        work(mixtral, batch=32), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0
    )
    assert batch_32.bytes_read_per_step > 2.5 * batch_1.bytes_read_per_step  # most experts get touched


def test_int4_reads_about_a_quarter(catalog: Catalog) -> None:
    a = llama8b(catalog)
    bf16 = estimate_performance(work(a), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    int4 = estimate_performance(work(a, level=Q.INT4), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    assert 2.5 < bf16.memory_seconds / int4.memory_seconds < 4


def test_prefill_is_compute_bound(catalog: Catalog) -> None:
    perf = estimate_performance(
        work(llama8b(catalog), prompt=4096), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0
    )
    flops = 2 * 8_030_261_248 * 4096 + 2 * 32 * 32 * 128 * 4096**2
    assert perf.prefill_seconds == pytest.approx(flops / (989e12 * 0.5))


def test_efficiency_overrides(catalog: Catalog) -> None:
    a = llama8b(catalog)
    base = estimate_performance(
        work(a), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0, efficiency=NO_OVERHEAD
    )
    half = estimate_performance(
        work(a),
        [H100],
        tensor_parallel=1,
        pipeline_parallel=1,
        link_gbps=0,
        efficiency=Efficiency(decode_mbu=NO_OVERHEAD.decode_mbu / 2, decode_overhead_seconds_per_layer=0.0),
    )
    assert half.memory_seconds == pytest.approx(2 * base.memory_seconds)
