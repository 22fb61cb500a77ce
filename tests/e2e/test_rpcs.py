"""Every RPC over the wire against the real server process."""

import json

import pytest
from google.protobuf import json_format

from accelplan.client import PlannerClient
from accelplan.v1 import cost_pb2, hardware_pb2, models_pb2, planning_pb2, quantization_pb2, training_pb2

Q = quantization_pb2
H = hardware_pb2
GIB = 2**30


def test_list_quantization_levels(client: PlannerClient) -> None:
    levels = client.list_quantization_levels().levels
    assert [(lv.level, lv.bits_per_param, lv.memory_reduction_factor, lv.display_name) for lv in levels] == [
        (Q.QUANTIZATION_LEVEL_NONE, 32, 1.0, "FP32"),
        (Q.QUANTIZATION_LEVEL_FLOAT16, 16, 2.0, "FP16"),
        (Q.QUANTIZATION_LEVEL_BFLOAT16, 16, 2.0, "BF16"),
        (Q.QUANTIZATION_LEVEL_INT8, 8, 4.0, "INT8"),
        (Q.QUANTIZATION_LEVEL_INT4, 4, 8.0, "INT4"),
        (Q.QUANTIZATION_LEVEL_FP8, 8, 4.0, "FP8"),
    ]


@pytest.mark.parametrize(
    ("request_", "level"),
    [
        (Q.ResolveQuantizationLevelRequest(bits=32), Q.QUANTIZATION_LEVEL_NONE),
        (Q.ResolveQuantizationLevelRequest(bits=16), Q.QUANTIZATION_LEVEL_FLOAT16),
        (Q.ResolveQuantizationLevelRequest(bits=8), Q.QUANTIZATION_LEVEL_INT8),
        (Q.ResolveQuantizationLevelRequest(bits=4), Q.QUANTIZATION_LEVEL_INT4),
        (Q.ResolveQuantizationLevelRequest(name="BF16"), Q.QUANTIZATION_LEVEL_BFLOAT16),
        (Q.ResolveQuantizationLevelRequest(name="quantization_level_none"), Q.QUANTIZATION_LEVEL_NONE),
        (Q.ResolveQuantizationLevelRequest(level=Q.QUANTIZATION_LEVEL_INT4), Q.QUANTIZATION_LEVEL_INT4),
    ],
)
def test_resolve(client: PlannerClient, request_: Q.ResolveQuantizationLevelRequest, level: int) -> None:
    assert client.resolve_quantization_level(request_).level == level


def test_estimate_memory_by_count(client: PlannerClient) -> None:
    e = client.estimate_memory(
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000), quantization=Q.QUANTIZATION_LEVEL_BFLOAT16
        )
    )
    assert (e.weights_bytes, e.overhead_bytes, e.total_bytes) == (140_000_000_000, 28_000_000_000, 168_000_000_000)
    assert e.assumptions


def test_estimate_memory_by_catalogue_id(client: PlannerClient) -> None:
    e = client.estimate_memory(
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(model_id="llama-3.1-8b"), quantization=Q.QUANTIZATION_LEVEL_INT8
        )
    )
    # Llama 3.1 8B: 32 layers, hidden 4096, 8 KV heads of 128, MLP 14336, vocab 128256, untied.
    embed = 128256 * 4096
    norms = 65 * 4096
    linear = 8_030_261_248 - 2 * embed - norms
    weights = -(-linear * (8 * 128 + 16 + 8) // (8 * 128)) + (2 * embed + norms) * 2  # INT8 g128 + scale + zero
    kv = 4096 * 2 * 32 * 8 * 128 * 2  # default context 4096, one sequence, 16-bit
    activations = 4096 * (2 * 4096 + 3 * 14336) * 2 + 128256 * 4
    assert e.parameter_count == e.active_parameter_count == 8_030_261_248
    assert (e.weights_bytes, e.kv_cache_bytes, e.activation_bytes) == (weights, kv, activations)
    assert e.kv_cache_bytes_per_token == 131072
    assert e.total_bytes == weights + kv + activations + e.overhead_bytes
    assert e.assumed.architecture_known and e.assumed.context_length == 4096


def test_estimate_memory_from_hf_config_json(client: PlannerClient) -> None:
    config = json.dumps(
        {
            "model_type": "mistral",
            "num_hidden_layers": 32,
            "hidden_size": 4096,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "intermediate_size": 14336,
            "vocab_size": 32768,
            "tie_word_embeddings": False,
            "unknown_key": [1, 2],
        }
    )
    e = client.estimate_memory(
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(hf_config_json=config),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
            context_length=32768,
            batch_size=2,
            kv_cache_quantization=Q.QUANTIZATION_LEVEL_FP8,
        )
    )
    assert e.parameter_count == 7_248_023_552  # Mistral 7B v0.3
    assert e.kv_cache_bytes == 2 * 32768 * 32 * 2 * 8 * 128 * 1


def test_uint64_above_2_pow_53_round_trips(client: PlannerClient) -> None:
    params = 2**53 + 1
    e = client.estimate_memory(
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=params), quantization=Q.QUANTIZATION_LEVEL_NONE
        )
    )
    assert e.parameter_count == params and e.weights_bytes == params * 4


def test_plan_sharding_70b_over_nvswitch(client: PlannerClient) -> None:
    fleet = H.Fleet(
        accelerators=[
            H.Accelerator(
                type=H.ACCELERATOR_TYPE_CUDA_GPU,
                device_id=i,
                memory_bytes=80 * GIB,
                memory_bandwidth_gigabytes_per_second=3350,
            )
            for i in range(8)
        ],
        interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVSWITCH, bandwidth_gigabytes_per_second=900)],
    )
    # 70B BF16 (168e9) exceeds one 80 GiB GPU.
    plan = client.plan_sharding(
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=fleet,
        )
    )
    assert plan.strategy == planning_pb2.SHARDING_STRATEGY_TENSOR_PARALLEL
    assert plan.device_count == 8 and len(plan.shards) == 8
    assert [s.accelerator.device_id for s in plan.shards] == list(range(8))
    assert [s.accelerator_index for s in plan.shards] == list(range(8))
    assert plan.total_memory_bytes == 168_000_000_000
    assert plan.fits_in_memory
    assert plan.HasField("estimated_tokens_per_second") and plan.estimated_tokens_per_second > 0


def test_plan_fills_tpu_memory_from_version(client: PlannerClient) -> None:
    fleet = H.Fleet(
        accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_version=H.TPU_VERSION_V5P, tpu_chip_count=4)]
    )
    plan = client.plan_sharding(
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=fleet,
        )
    )
    assert plan.strategy == planning_pb2.SHARDING_STRATEGY_NONE
    assert plan.shards[0].accelerator.memory_bytes == 4 * 95 * GIB


def test_plan_cpu_fallback_has_no_fleet_index(client: PlannerClient) -> None:
    fleet = H.Fleet(accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=8 * GIB)])
    plan = client.plan_sharding(
        planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
            quantization=Q.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=fleet,
        )
    )
    assert plan.shards[0].accelerator.type == H.ACCELERATOR_TYPE_CPU
    assert not plan.shards[0].HasField("accelerator_index")
    assert not plan.fits_in_memory


def test_suggest_with_and_without_sharding(client: PlannerClient) -> None:
    fleet = H.Fleet(accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=24 * GIB)] * 8)
    model = models_pb2.ModelSpec(parameter_count=70_000_000_000)
    plain = client.suggest_quantization(planning_pb2.SuggestQuantizationRequest(model=model, fleet=fleet))
    assert plain.quantization == Q.QUANTIZATION_LEVEL_INT4 and not plain.HasField("assumed_plan")
    sharded = client.suggest_quantization(
        planning_pb2.SuggestQuantizationRequest(model=model, fleet=fleet, consider_sharding=True)
    )
    assert sharded.quantization == Q.QUANTIZATION_LEVEL_FLOAT16
    assert sharded.assumed_plan.device_count == 8
    assert sharded.reason


def test_training(client: PlannerClient) -> None:
    e = client.estimate_training_memory(
        training_pb2.EstimateTrainingMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=7_000_000_000),
            method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE,
        )
    )
    assert (e.model_bytes, e.optimizer_bytes, e.activation_bytes) == (14e9, 28e9, 14e9)
    assert e.target == training_pb2.TRAINING_TARGET_GPU  # the documented default
    q = client.estimate_training_memory(
        training_pb2.EstimateTrainingMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=7_000_000_000),
            method=training_pb2.TRAINING_METHOD_QLORA,
            target=training_pb2.TRAINING_TARGET_TPU,
        )
    )
    assert (q.model_bytes, q.optimizer_bytes, q.activation_bytes) == (5_600_000_000, 2_100_000_000, 672_000_000)


def test_recommend_instances_paginates(client: PlannerClient) -> None:
    req = cost_pb2.RecommendInstancesRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-8b"), quantization=Q.QUANTIZATION_LEVEL_BFLOAT16, page_size=3
    )
    first = client.recommend_instances(req)
    assert len(first.recommendations) == 3 and first.next_page_token
    req.page_token = first.next_page_token
    second = client.recommend_instances(req)
    prices = [r.instance.price_per_hour_usd for r in [*first.recommendations, *second.recommendations]]
    assert prices == sorted(prices)
    names = [r.instance.name for r in [*first.recommendations, *second.recommendations]]
    assert len(names) == len(set(names))


def test_models(client: PlannerClient) -> None:
    listed = client.list_models(models_pb2.ListModelsRequest(family="LLAMA"))
    assert listed.models and {m.family for m in listed.models} == {"llama"}
    m = client.get_model("meta-llama/Llama-3.1-70B")
    assert m.id == "llama-3.1-70b" and m.parameter_count == 70_553_706_496 and m.source_url
    fits = client.find_compatible_models(
        models_pb2.FindCompatibleModelsRequest(quantization=Q.QUANTIZATION_LEVEL_INT4, available_memory_bytes=24 * GIB)
    ).models
    counts = [f.model.parameter_count for f in fits]
    assert counts == sorted(counts, reverse=True) and fits


def test_filter_accelerators(client: PlannerClient) -> None:
    fleet = H.Fleet(
        accelerators=[
            H.Accelerator(type=H.ACCELERATOR_TYPE_CPU, memory_bytes=64 * GIB),
            H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_version=H.TPU_VERSION_V5E, tpu_chip_count=8),
            H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 * GIB, unavailable=True),
            H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_version=H.TPU_VERSION_V4, tpu_chip_count=2),
        ]
    )
    r = client.filter_accelerators(
        H.FilterAcceleratorsRequest(
            fleet=fleet, requirement=H.AcceleratorRequirement(kind=H.ACCELERATOR_REQUIREMENT_KIND_TPU, min_tpu_chips=4)
        )
    )
    assert [m.index for m in r.matches] == [1]
    caps = r.matches[0].capabilities
    assert caps.rank == 55 and caps.family == H.ACCELERATOR_FAMILY_TPU
    assert caps.preferred_quantization == Q.QUANTIZATION_LEVEL_BFLOAT16
    assert list(caps.supported_quantizations) == [
        Q.QUANTIZATION_LEVEL_NONE,
        Q.QUANTIZATION_LEVEL_BFLOAT16,
        Q.QUANTIZATION_LEVEL_INT8,
    ]
    assert caps.memory_bytes == 8 * 16 * GIB
    everything = client.filter_accelerators(H.FilterAcceleratorsRequest(fleet=fleet))
    assert [m.index for m in everything.matches] == [0, 1, 3]  # unavailable GPU excluded


def test_json_transcoding_of_64_bit_fields(client: PlannerClient) -> None:
    e = client.estimate_memory(
        planning_pb2.EstimateMemoryRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000), quantization=Q.QUANTIZATION_LEVEL_BFLOAT16
        )
    )
    assert json_format.MessageToDict(e)["totalBytes"] == "168000000000"
