"""Issue 11 section 1: no speed or capacity answer hides a model that does not fit or a precision a device lacks."""

import json
from pathlib import Path

import grpc
import pytest

from accelplan.client import PlannerClient, PlannerError
from accelplan.v1 import cost_pb2, hardware_pb2, models_pb2, planning_pb2, quantization_pb2, training_pb2
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_cli import cli

H = hardware_pb2
Q = quantization_pb2
P = planning_pb2
GIB = 2**30
LLAMA_70B = models_pb2.ModelSpec(model_id="llama-3.1-70b")
LLAMA_8B = models_pb2.ModelSpec(model_id="llama-3.1-8b")


def skus(sku: str, n: int) -> H.Fleet:
    return H.Fleet(
        accelerators=[H.Accelerator(sku=sku, device_id=i) for i in range(n)],
        interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVSWITCH, bandwidth_gigabytes_per_second=900)],
    )


def perf(client: PlannerClient, **kw: object) -> P.EstimatePerformanceResponse:
    r = client.call("EstimatePerformance", P.EstimatePerformanceRequest(**kw))  # type: ignore[arg-type]
    assert isinstance(r, P.EstimatePerformanceResponse)
    return r


def test_perf_70b_bf16_on_one_of_eight_h100s_says_it_does_not_fit(client: PlannerClient) -> None:
    r = perf(client, model=LLAMA_70B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, fleet=skus("h100-sxm", 8))
    assert not r.fits_in_memory
    listed = client.call("ListAcceleratorModels", H.ListAcceleratorModelsRequest(page_size=1000))
    h100 = next(m for m in listed.accelerator_models if m.sku == "h100-sxm")
    assert r.device_memory_bytes == h100.memory_bytes  # the memory CUDA reports, from the catalogue
    assert r.memory_per_device_bytes > 130 * GIB  # 141 GB of BF16 weights alone
    assert r.devices_used == 1
    assert any(a.startswith("Does not fit") for a in r.assumptions)
    assert any("Used 1 of the fleet's 8 available devices" in a for a in r.assumptions)


def test_perf_70b_bf16_over_tp4_fits(client: PlannerClient) -> None:
    r = perf(
        client,
        model=LLAMA_70B,
        quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=skus("h100-sxm", 8),
        tensor_parallel_size=4,
    )
    assert r.fits_in_memory and r.devices_used == 4
    assert 32 * GIB < r.memory_per_device_bytes < 36 * GIB  # 141 GB / 4 of weights + KV + activations
    assert not any(a.startswith("Does not fit") for a in r.assumptions)


def test_perf_pipeline_stages_split_the_weights(client: PlannerClient) -> None:
    one = perf(client, model=LLAMA_70B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, fleet=skus("h100-sxm", 2))
    two = perf(
        client,
        model=LLAMA_70B,
        quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=skus("h100-sxm", 2),
        pipeline_parallel_size=2,
    )
    assert two.devices_used == 2 and two.fits_in_memory and not one.fits_in_memory
    assert two.memory_per_device_bytes < one.memory_per_device_bytes * 0.55


@pytest.mark.parametrize("sku", ["a100-80gb-sxm", "t4", "a10g", "tpu-v5e"])
def test_fp8_on_a_device_without_fp8_is_refused_everywhere(client: PlannerClient, sku: str) -> None:
    fleet = skus(sku, 8)
    calls = [
        ("PlanSharding", P.PlanShardingRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_FP8, fleet=fleet)),
        (
            "EstimatePerformance",
            P.EstimatePerformanceRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_FP8, fleet=fleet),
        ),
        (
            "EstimateCapacity",
            P.EstimateCapacityRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_FP8, fleet=fleet),
        ),
    ]
    for method, request in calls:
        with pytest.raises(PlannerError) as e:
            client.call(method, request)
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION, method
        assert f"sku {sku!r} cannot run FP8" in e.value.message
        assert "it supports FP32, " in e.value.message  # the levels it does run are named
        assert e.value.violations and e.value.violations[0].field.startswith("fleet.accelerators[")


def test_bf16_on_a_t4_is_refused(client: PlannerClient) -> None:
    with pytest.raises(PlannerError) as e:
        perf(client, model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, fleet=skus("t4", 1))
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "FP16" in e.value.message


def test_fp8_on_h100_is_answered(client: PlannerClient) -> None:
    r = perf(client, model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_FP8, fleet=skus("h100-sxm", 1))
    assert r.fits_in_memory and r.decode_tokens_per_second_total > 0


def test_fp8_on_a_gpu_without_sku_says_it_was_not_checked(client: PlannerClient) -> None:
    fleet = H.Fleet(accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 * GIB)])
    r = perf(client, model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_FP8, fleet=fleet)
    assert any("FP8 units was not checked" in a for a in r.assumptions)


def test_recommend_instances_never_offers_a_device_without_the_precision(client: PlannerClient) -> None:
    r = client.recommend_instances(
        cost_pb2.RecommendInstancesRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_FP8, page_size=100)
    )
    offered = {x.instance.accelerator_sku for x in r.recommendations}
    assert offered and not offered & {"a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie", "a10g", "t4", "tpu-v5e"}
    assert any("a100-80gb-sxm" in a and "t4" in a for a in r.assumptions)
    bf16 = client.recommend_instances(
        cost_pb2.RecommendInstancesRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, page_size=100)
    )
    assert "t4" not in {x.instance.accelerator_sku for x in bf16.recommendations}
    assert "a100-80gb-sxm" in {x.instance.accelerator_sku for x in bf16.recommendations}


def test_plan_that_does_not_fit_says_so(client: PlannerClient) -> None:
    p = client.plan_sharding(
        P.PlanShardingRequest(model=LLAMA_70B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, fleet=skus("l4", 1))
    )
    assert not p.fits_in_memory
    assert any(a.startswith("Does not fit") for a in p.assumptions)


def test_context_beyond_max_position_embeddings_is_flagged(client: PlannerClient) -> None:
    e = client.estimate_memory(
        P.EstimateMemoryRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, context_length=200_000)
    )
    assert any("exceeds the model's max_position_embeddings (131072)" in a for a in e.assumptions)
    ok = client.estimate_memory(
        P.EstimateMemoryRequest(model=LLAMA_8B, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, context_length=100_000)
    )
    assert not any("max_position_embeddings (" in a for a in ok.assumptions)
    r = perf(
        client,
        model=LLAMA_8B,
        quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=skus("h100-sxm", 1),
        prompt_tokens=200_000,
    )
    assert any("prompt_tokens + output_tokens = 200128 exceeds" in a for a in r.assumptions)


def test_cli_hardware_shows_unknown_figures_as_dash(server: ServerProcess, client: PlannerClient) -> None:
    models = client.call("ListAcceleratorModels", H.ListAcceleratorModelsRequest(page_size=1000))
    unknown = {
        m.sku
        for m in models.accelerator_models  # type: ignore[attr-defined]
        if not {p.precision for p in m.peaks} & {"bf16", "fp16"}
    }
    assert unknown  # rows without a sourced 16-bit peak exist (a10g, CPU rows)
    out = cli(server, "hardware")
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines()[2:]:
        sku, *_, tflops, _levels = line.split()
        assert tflops != "0"
        if sku in unknown:
            assert tflops == "-", line


def test_cli_perf_prints_the_fit(server: ServerProcess) -> None:
    out = cli(server, "perf", "--model-id", "llama-3.1-70b", "--quant", "bf16", "--fleet", "8xh100-sxm")
    assert out.returncode == 0, out.stderr
    assert "fits in memory:         NO" in out.stdout
    assert "devices used:           1 of 8" in out.stdout


def test_hf_config_json_of_a_multimodal_model_over_the_wire(client: PlannerClient) -> None:
    data = json.loads((Path(__file__).parents[1] / "unit" / "hf_configs" / "gemma-3-4b-it.json").read_text())
    e = client.estimate_memory(
        P.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(hf_config_json=json.dumps(data["config"])),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        )
    )
    assert e.parameter_count == data["published_total"]
    assert any("SigLIP vision tower" in a for a in e.assumptions)


def test_hf_config_json_of_mamba_is_sized_and_jamba_refused_by_name(client: PlannerClient) -> None:
    data = json.loads((Path(__file__).parents[1] / "unit" / "hf_configs" / "mamba-130m-hf.json").read_text())
    e = client.estimate_memory(
        P.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(hf_config_json=json.dumps(data["config"])),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
        )
    )
    assert e.parameter_count == data["published_total"] and e.kv_cache_bytes_per_token == 0
    jamba = {"model_type": "jamba", "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 65536}
    with pytest.raises(PlannerError) as err:
        client.estimate_memory(
            P.EstimateMemoryRequest(
                model=models_pb2.ModelSpec(hf_config_json=json.dumps(jamba)),
                quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
            )
        )
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "model_type 'jamba' is not supported yet" in err.value.message


def test_bare_parameter_count_with_zero_stage_is_refused_not_ignored(client: PlannerClient) -> None:
    with pytest.raises(PlannerError) as e:
        client.estimate_training_memory(
            training_pb2.EstimateTrainingMemoryRequest(
                model=models_pb2.ModelSpec(parameter_count=8_000_000_000),
                method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE,
                zero_stage=3,
                data_parallel_size=8,
            )
        )
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in e.value.violations} == {"zero_stage", "data_parallel_size"}
    plain = client.estimate_training_memory(
        training_pb2.EstimateTrainingMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=8_000_000_000),
            method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE,
        )
    )
    assert plain.total_bytes > 0


def test_torchtune_recipe_over_the_wire(client: PlannerClient) -> None:
    r = client.estimate_training_memory(
        training_pb2.EstimateTrainingMemoryRequest(
            model=LLAMA_8B,
            method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE,
            micro_batch_size=2,
            sequence_length=2048,
            optimizer=training_pb2.OPTIMIZER_PAGED_ADAMW_8BIT,
            activation_recomputation=training_pb2.ACTIVATION_RECOMPUTATION_FULL,
            pure_bf16=True,
            optimizer_in_backward=True,
        )
    )
    assert r.total_bytes == pytest.approx(18.9 * GIB, rel=0.15)  # torchtune README's measured peak
    assert r.host_memory_bytes > 0


def test_offload_parameters_needs_zero3(client: PlannerClient) -> None:
    with pytest.raises(PlannerError) as e:
        client.estimate_training_memory(
            training_pb2.EstimateTrainingMemoryRequest(
                model=LLAMA_8B, method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE, offload_parameters=True
            )
        )
    assert [v.field for v in e.value.violations] == ["offload_parameters"]


def test_state_space_model_speed_capacity_and_training(client: PlannerClient) -> None:
    data = json.loads((Path(__file__).parents[1] / "unit" / "hf_configs" / "falcon-mamba-7b.json").read_text())
    model = models_pb2.ModelSpec(hf_config_json=json.dumps(data["config"]))
    r = perf(client, model=model, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, fleet=skus("h100-sxm", 1), batch_size=8)
    assert r.fits_in_memory and r.decode_tokens_per_second_total > 0
    cap = client.call(
        "EstimateCapacity",
        P.EstimateCapacityRequest(model=model, quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, fleet=skus("h100-sxm", 1)),
    )
    assert cap.max_concurrent_sequences > 100  # type: ignore[attr-defined]
    t = client.estimate_training_memory(
        training_pb2.EstimateTrainingMemoryRequest(model=model, method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE)
    )
    assert t.total_bytes > 16 * data["published_total"]
