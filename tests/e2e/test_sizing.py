"""The architecture-aware RPCs over the wire: capacity, performance, the hardware catalogue, skus."""

import grpc
import pytest

from accelplan.client import PlannerClient, PlannerError
from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, quantization_pb2
from tests.e2e.test_errors import violations

H = hardware_pb2
Q = quantization_pb2
GIB = 2**30


def h100s(n: int) -> hardware_pb2.Fleet:
    return H.Fleet(
        accelerators=[H.Accelerator(sku="h100-sxm", device_id=i) for i in range(n)],
        interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVSWITCH, bandwidth_gigabytes_per_second=900)],
    )


def test_list_accelerator_models(client: PlannerClient) -> None:
    resp = client.call("ListAcceleratorModels", H.ListAcceleratorModelsRequest(type=H.ACCELERATOR_TYPE_TPU))
    skus = {m.sku for m in resp.accelerator_models}  # type: ignore[attr-defined]
    assert {"tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e"} <= skus
    everything = client.call("ListAcceleratorModels", H.ListAcceleratorModelsRequest(page_size=1000))
    h100 = next(m for m in everything.accelerator_models if m.sku == "h100-sxm")  # type: ignore[attr-defined]
    assert h100.memory_bytes == 85_045_477_376 and h100.memory_bandwidth_gigabytes_per_second == 3350  # as CUDA reports
    assert Q.QUANTIZATION_LEVEL_FP8 in h100.supported_quantizations and h100.source_url
    a100 = next(m for m in everything.accelerator_models if m.sku == "a100-80gb-sxm")  # type: ignore[attr-defined]
    assert Q.QUANTIZATION_LEVEL_FP8 not in a100.supported_quantizations


def test_sku_fills_device_and_fp8_support(client: PlannerClient) -> None:
    r = client.filter_accelerators(
        H.FilterAcceleratorsRequest(
            fleet=H.Fleet(accelerators=[H.Accelerator(sku="h100-sxm"), H.Accelerator(sku="a100-80gb-sxm")])
        )
    )
    h100, a100 = r.matches
    assert h100.capabilities.memory_bytes == 85_045_477_376  # the catalogue's figure as CUDA reports it
    assert h100.capabilities.memory_bandwidth_gigabytes_per_second == 3350
    assert Q.QUANTIZATION_LEVEL_FP8 in h100.capabilities.supported_quantizations
    assert Q.QUANTIZATION_LEVEL_FP8 not in a100.capabilities.supported_quantizations


def test_unknown_sku_is_not_found(client: PlannerClient) -> None:
    with pytest.raises(PlannerError) as e:
        client.filter_accelerators(
            H.FilterAcceleratorsRequest(fleet=H.Fleet(accelerators=[H.Accelerator(sku="h1000")]))
        )
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_capacity(client: PlannerClient) -> None:
    r = client.call(
        "EstimateCapacity",
        planning_pb2.EstimateCapacityRequest(
            model=models_pb2.ModelSpec(model_id="llama-3.1-70b"),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=h100s(4),
            context_length=8192,
        ),
    )
    assert r.tensor_parallel_size == 4  # type: ignore[attr-defined]
    per_token = 2 * 80 * 2 * 128 * 2  # 8 KV heads / 4 devices = 2 per device
    assert r.kv_cache_tokens == r.kv_cache_budget_bytes // per_token  # type: ignore[attr-defined]
    assert r.max_concurrent_sequences == r.kv_cache_budget_bytes // (8192 * per_token)  # type: ignore[attr-defined]
    assert r.max_context_length == 131072  # type: ignore[attr-defined]
    assert r.usable_memory_bytes == int(85_045_477_376 * 0.9)  # type: ignore[attr-defined]


def test_capacity_needs_an_architecture(client: PlannerClient) -> None:
    with pytest.raises(PlannerError) as e:
        client.call(
            "EstimateCapacity",
            planning_pb2.EstimateCapacityRequest(
                model=models_pb2.ModelSpec(parameter_count=7_000_000_000),
                quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
                fleet=h100s(1),
            ),
        )
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and e.value.violations[0].field == "model"


def test_performance(client: PlannerClient) -> None:
    req = planning_pb2.EstimatePerformanceRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-70b"),
        quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=h100s(8),
        tensor_parallel_size=8,
        prompt_tokens=1024,
        output_tokens=256,
    )
    r = client.call("EstimatePerformance", req)
    assert r.bound == planning_pb2.PERFORMANCE_BOUND_MEMORY_BANDWIDTH  # type: ignore[attr-defined]
    assert 20 < r.decode_tokens_per_second_per_sequence < 200  # type: ignore[attr-defined]
    assert r.communication_seconds_per_token > 0 and r.prefill_seconds > 0  # type: ignore[attr-defined]
    assert r.end_to_end_seconds == pytest.approx(  # type: ignore[attr-defined]
        r.prefill_seconds + 256 * r.decode_seconds_per_token
    )  # type: ignore[attr-defined]
    req.batch_size = 256
    big = client.call("EstimatePerformance", req)
    assert big.decode_tokens_per_second_total > 50 * r.decode_tokens_per_second_total  # type: ignore[attr-defined]
    req.batch_size = 1
    req.decode_mbu = 0.4
    slow = client.call("EstimatePerformance", req)
    assert slow.decode_mbu == 0.4  # type: ignore[attr-defined]
    assert slow.memory_seconds_per_token == pytest.approx(  # type: ignore[attr-defined]
        r.decode_mbu / 0.4 * r.memory_seconds_per_token  # type: ignore[attr-defined]
    )


def test_performance_errors(stub: object) -> None:
    req = planning_pb2.EstimatePerformanceRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-8b"),
        quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=h100s(1),
        tensor_parallel_size=2,
        decode_mbu=1.5,
    )
    with pytest.raises(grpc.RpcError) as e:
        stub.EstimatePerformance(req, timeout=10)  # type: ignore[attr-defined]
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(e.value) == {"decode_mbu"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (models_pb2.ModelSpec(hf_config_json="{not json"), "model.hf_config_json"),
        (models_pb2.ModelSpec(hf_config_json="[1, 2]"), "model.hf_config_json"),
        (models_pb2.ModelSpec(hf_config_json='{"hidden_size": 64}'), "model.hf_config_json.num_hidden_layers"),
        (
            models_pb2.ModelSpec(
                architecture=models_pb2.ModelArchitecture(
                    num_hidden_layers=2, hidden_size=65, num_attention_heads=4, vocab_size=10, intermediate_size=8
                )
            ),
            "model.architecture.num_attention_heads",
        ),
        (
            models_pb2.ModelSpec(
                architecture=models_pb2.ModelArchitecture(
                    num_hidden_layers=2,
                    hidden_size=64,
                    num_attention_heads=4,
                    num_key_value_heads=8,
                    vocab_size=10,
                    intermediate_size=8,
                )
            ),
            "model.architecture.num_key_value_heads",
        ),
        (
            models_pb2.ModelSpec(
                architecture=models_pb2.ModelArchitecture(
                    hidden_size=64, num_attention_heads=4, vocab_size=10, intermediate_size=8
                )
            ),
            "model.architecture.num_hidden_layers",
        ),
    ],
)
def test_bad_architectures(stub: object, spec: models_pb2.ModelSpec, field: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        stub.EstimateMemory(
            planning_pb2.EstimateMemoryRequest(  # type: ignore[attr-defined]
                model=spec, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16
            ),
            timeout=10,
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(e.value)


def test_performance_engine_selector(client: PlannerClient, stub: object) -> None:
    """Issue 11: the request names the engine; llama.cpp prefills in 512-token micro-batches and decodes slower."""
    req = planning_pb2.EstimatePerformanceRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-8b"),
        quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=h100s(1),
        prompt_tokens=4096,
        output_tokens=2048,
    )
    default = client.call("EstimatePerformance", req)
    assert default.engine == planning_pb2.ENGINE_VLLM  # type: ignore[attr-defined]
    assert any("UNSPECIFIED" in a for a in default.assumptions)  # type: ignore[attr-defined]
    req.engine = planning_pb2.ENGINE_LLAMA_CPP
    cpp = client.call("EstimatePerformance", req)
    assert cpp.engine == planning_pb2.ENGINE_LLAMA_CPP  # type: ignore[attr-defined]
    assert cpp.prefill_seconds > default.prefill_seconds  # type: ignore[attr-defined]
    assert cpp.decode_seconds_per_token > default.decode_seconds_per_token  # type: ignore[attr-defined]
    assert default.decode_mbu == pytest.approx(0.95)  # type: ignore[attr-defined]  # the H100 SXM's measured figure
    req.engine = 99  # type: ignore[assignment]
    with pytest.raises(grpc.RpcError) as e:
        stub.EstimatePerformance(req, timeout=10)  # type: ignore[attr-defined]
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(e.value) == {"engine"}
