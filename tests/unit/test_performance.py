import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.hardware.specs import DeviceSpecs
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.weights import WeightFormat, bytes_read_per_token, weights_bytes
from accelplan_server.core.planning import engines
from accelplan_server.core.planning.roofline import (
    ALLREDUCE_LATENCY_SECONDS,
    Bound,
    Efficiency,
    Workload,
    estimate_performance,
)
from accelplan_server.core.quantization import Quantization as Q

H100 = DeviceSpecs(80 * 2**30, 3350.0, {"bf16": 989.0, "fp16": 989.0, "fp8": 1979.0}, "H100")
NO_OVERHEAD = Efficiency(decode_mbu=0.8, decode_overhead_seconds_per_layer=0.0)


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
    e = engines.profile(engines.Engine.UNSPECIFIED)
    linear, attention = 2 * 8_030_261_248 * 4096, 2 * 32 * 32 * 128 * 4096**2
    mfu = e.prefill_mfu_max * 4096 / (4096 + e.prefill_half_tokens)
    expected = (linear + attention / e.prefill_attention_efficiency) / (989e12 * mfu)
    assert perf.prefill_seconds == pytest.approx(expected + 32 * e.prefill_overhead_seconds_per_layer)
    assert perf.prefill_mfu == pytest.approx(mfu)


def test_prefill_mfu_grows_with_prompt_length_and_short_prompts_pay_a_per_layer_cost(catalog: Catalog) -> None:
    """Issue 11: short prompts came out 31-64% too fast (one MFU and no fixed cost)."""
    a = llama8b(catalog)
    short = estimate_performance(work(a, prompt=32), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    long = estimate_performance(work(a, prompt=4096), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    assert short.prefill_mfu < long.prefill_mfu / 2
    assert 32 / short.prefill_seconds < 0.5 * 4096 / long.prefill_seconds  # tokens/s far lower for short prompts
    assert short.prefill_seconds >= 32 * engines.SERVER.prefill_overhead_seconds_per_layer > 0


def test_llama_cpp_prefills_in_micro_batches_and_reads_the_weights_each_time(catalog: Catalog) -> None:
    a = llama8b(catalog)
    slow = DeviceSpecs(80 * 2**30, 100.0, {"bf16": 989.0, "fp16": 989.0}, "slow memory")
    one = estimate_performance(
        work(a, prompt=512)._replace(engine=engines.Engine.LLAMA_CPP),
        [slow],
        tensor_parallel=1,
        pipeline_parallel=1,
        link_gbps=0,
    )
    eight = estimate_performance(
        work(a, prompt=4096)._replace(engine=engines.Engine.LLAMA_CPP),
        [slow],
        tensor_parallel=1,
        pipeline_parallel=1,
        link_gbps=0,
    )
    assert eight.prefill_seconds == pytest.approx(8 * one.prefill_seconds, rel=0.01)  # memory-bound: 8 weight reads


def test_engines_differ(catalog: Catalog) -> None:
    a = llama8b(catalog)
    w = work(a, prompt=2048, output=4096)
    vllm = estimate_performance(w, [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    cpp = estimate_performance(
        w._replace(engine=engines.Engine.LLAMA_CPP), [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0
    )
    assert cpp.prefill_seconds > 1.05 * vllm.prefill_seconds  # slower attention, 512-token micro-batches
    assert cpp.decode_seconds_per_token > 1.1 * vllm.decode_seconds_per_token  # slower KV reads at long context
    assert any("llama.cpp" in n for n in cpp.assumptions) and any("UNSPECIFIED" in n for n in vllm.assumptions)


def test_kv_reads_have_their_own_efficiency(catalog: Catalog) -> None:
    """Issue 11: large-batch, long-output decode read the KV cache at the weights' utilisation."""
    a = llama8b(catalog)
    e = Efficiency(decode_mbu=0.8, decode_overhead_seconds_per_layer=0.0)
    w = work(a, batch=64, prompt=1024, output=2048)._replace(engine=engines.Engine.LLAMA_CPP)
    perf = estimate_performance(w, [H100], tensor_parallel=1, pipeline_parallel=1, link_gbps=0, efficiency=e)
    weights = bytes_read_per_token(a.parameters, WeightFormat(Q.BFLOAT16), tied=False)
    kv = perf.bytes_read_per_step - weights
    expected = weights / (3350e9 * 0.8) + kv / (3350e9 * 0.8 * engines.LLAMA_CPP.kv_read_efficiency)
    assert engines.LLAMA_CPP.kv_read_efficiency < 0.5
    assert perf.memory_seconds == pytest.approx(expected)


def test_decode_mbu_is_per_device_from_the_catalogue(catalog: Catalog) -> None:
    """Issue 11: one 0.8 for every device (and one per-layer cost) made Apple Ultra chips decode too fast."""
    from accelplan_server.core.hardware.accelerators import Accelerator
    from accelplan_server.core.hardware.bandwidth import BandwidthTable
    from accelplan_server.core.hardware.specs import resolve

    table = BandwidthTable.from_catalog(catalog)
    sku = catalog.accelerator("apple-m2-ultra")
    assert sku is not None and 0 < sku.decode_mbu <= 0.95 and "fit.py" in sku.decode_mbu_source
    spec = resolve(Accelerator(sku.type, sku.memory_bytes, sku=sku.sku), catalog, table)
    a = llama8b(catalog)
    perf = estimate_performance(work(a), [spec], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    assert perf.decode_mbu == pytest.approx(sku.decode_mbu)
    assert any("measured" in n and "M2 Ultra" in n for n in perf.assumptions)
    cpp = estimate_performance(
        work(a)._replace(engine=engines.Engine.LLAMA_CPP), [spec], tensor_parallel=1, pipeline_parallel=1, link_gbps=0
    )
    assert any("Metal" in n for n in cpp.assumptions)  # llama.cpp's Metal figures on an Apple GPU
    metal, cuda = engines.LLAMA_CPP_METAL, engines.LLAMA_CPP
    assert metal.decode_overhead_seconds_per_layer > cuda.decode_overhead_seconds_per_layer
    unmeasured = DeviceSpecs(80 * 2**30, 3350.0, {"bf16": 989.0}, "no figure")
    other = estimate_performance(work(a), [unmeasured], tensor_parallel=1, pipeline_parallel=1, link_gbps=0)
    assert other.decode_mbu == 0.8 and any("no measured figure" in n for n in other.assumptions)


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
