import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.memory.finetune import (
    ALL_LINEAR,
    NF4_BITS,
    FinetuneSetup,
    Optimizer,
    Recomputation,
    activation_bytes_per_layer,
    estimate_finetune_memory,
    lora_trainable_parameters,
)
from accelplan_server.core.memory.hwaccel_training import TrainingMethod as M
from accelplan_server.core.model.architecture import Architecture


@pytest.fixture(scope="module")
def llama8b(catalog: Catalog) -> Architecture:
    return Architecture.from_config(catalog.model("llama-3.1-8b").architecture or {})


def model_states(f: object) -> int:
    return f.weights_bytes + f.gradient_bytes + f.optimizer_state_bytes  # type: ignore[attr-defined]


def test_peft_trainable_count_all_linear_r16(llama8b: Architecture) -> None:
    # PEFT's print_trainable_parameters for Llama-3.1-8B, target_modules="all-linear", r=16.
    assert lora_trainable_parameters(llama8b, 16, ALL_LINEAR) == 41_943_040
    assert lora_trainable_parameters(llama8b, 16, ("q_proj", "v_proj")) == 32 * 16 * (4096 + 4096 + 4096 + 1024)


def test_adamw_is_16_bytes_per_parameter(llama8b: Architecture) -> None:
    f = estimate_finetune_memory(llama8b, FinetuneSetup(M.FULL_FINE_TUNE))
    assert model_states(f) == 16 * 8_030_261_248


@pytest.mark.parametrize("gpus", [1, 2, 8, 64])
def test_zero2_matches_deepspeed_estimator(llama8b: Architecture, gpus: int) -> None:
    # deepspeed.runtime.zero.stage_1_and_2.estimate_zero2_model_states_mem_needs(cpu_offload=False):
    # gpu_mem = 4 * total_params + int(16 * total_params / total_gpus)
    p = 8_030_261_248
    f = estimate_finetune_memory(llama8b, FinetuneSetup(M.FULL_FINE_TUNE, zero_stage=2, data_parallel_size=gpus))
    assert model_states(f) == 4 * p + int(16 * p / gpus)


@pytest.mark.parametrize("gpus", [1, 8, 64])
def test_zero3_matches_deepspeed_estimator(llama8b: Architecture, gpus: int) -> None:
    # deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs(cpu_offload=False):
    # gpu_mem = 4 * largest_layer_params + int(18 * total_params / total_gpus)
    p, largest = 8_030_261_248, 128256 * 4096  # the embedding is the largest module
    f = estimate_finetune_memory(llama8b, FinetuneSetup(M.FULL_FINE_TUNE, zero_stage=3, data_parallel_size=gpus))
    assert model_states(f) == 4 * largest + int(18 * p / gpus)


def test_korthikanti_activations(llama8b: Architecture) -> None:
    s, b, h, a = 2048, 2, 4096, 32
    setup = FinetuneSetup(M.FULL_FINE_TUNE, micro_batch_size=b, sequence_length=s)
    assert activation_bytes_per_layer(llama8b, setup) == pytest.approx(s * b * h * (34 + 5 * a * s / h))
    tp = FinetuneSetup(M.FULL_FINE_TUNE, micro_batch_size=b, sequence_length=s, tensor_parallel_size=4)
    assert activation_bytes_per_layer(llama8b, tp) == pytest.approx(s * b * h * (10 + 24 / 4 + 5 * a * s / (h * 4)))
    sp = FinetuneSetup(
        M.FULL_FINE_TUNE, micro_batch_size=b, sequence_length=s, tensor_parallel_size=4, sequence_parallel=True
    )
    assert activation_bytes_per_layer(llama8b, sp) == pytest.approx(s * b * h * (34 / 4 + 5 * a * s / (h * 4)))
    sel = FinetuneSetup(M.FULL_FINE_TUNE, micro_batch_size=b, sequence_length=s, recomputation=Recomputation.SELECTIVE)
    assert activation_bytes_per_layer(llama8b, sel) == pytest.approx(s * b * h * 34)
    full = FinetuneSetup(M.FULL_FINE_TUNE, micro_batch_size=b, sequence_length=s, recomputation=Recomputation.FULL)
    assert activation_bytes_per_layer(llama8b, full) == pytest.approx(2 * s * b * h)


def test_qlora_nf4_base_and_adapter_states(llama8b: Architecture) -> None:
    f = estimate_finetune_memory(llama8b, FinetuneSetup(M.QLORA, lora_targets=ALL_LINEAR))
    p = llama8b.parameters
    assert f.trainable_parameters == 41_943_040
    assert f.weights_bytes == int(p.linear * NF4_BITS / 8) + (p.total - p.linear) * 2 + 41_943_040 * 2
    assert f.optimizer_state_bytes == 12 * 41_943_040 and f.gradient_bytes == 2 * 41_943_040


def test_optimizers(llama8b: Architecture) -> None:
    p = 8_030_261_248
    for opt, state in ((Optimizer.ADAMW_8BIT, 6), (Optimizer.SGD, 8)):
        f = estimate_finetune_memory(llama8b, FinetuneSetup(M.FULL_FINE_TUNE, optimizer=opt))
        assert f.optimizer_state_bytes == state * p


def test_frozen_extra_models(llama8b: Architecture) -> None:
    p = 8_030_261_248
    dpo = estimate_finetune_memory(llama8b, FinetuneSetup(M.DPO))
    assert dpo.frozen_models_bytes == 2 * p  # the reference model
    rlhf = estimate_finetune_memory(llama8b, FinetuneSetup(M.RLHF))
    assert rlhf.frozen_models_bytes == 2 * 2 * p  # reference and reward
    assert model_states(rlhf) == 2 * 16 * p  # policy and critic trained
    small = Architecture.from_config(
        {
            "num_hidden_layers": 2,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "vocab_size": 100,
        }
    )
    distil = estimate_finetune_memory(small, FinetuneSetup(M.DISTILLATION), teacher=llama8b)
    assert distil.frozen_models_bytes == 2 * p
