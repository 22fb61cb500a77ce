"""Fine-tuning memory per device for a known architecture.

Model states (mixed precision): 16-bit weights (2 bytes), 16-bit gradients
(2 bytes) and the optimizer's FP32 state per trainable parameter: AdamW 12
bytes (master weights, first and second moments: 16 bytes in all), 8-bit Adam
6 bytes (master weights and two 8-bit moments), SGD with momentum 8 bytes.
Modern recipes change this: pure BF16 drops the master copy (AdamW moments in
BF16: 4 bytes), paged optimizers (bitsandbytes) keep the moments in unified
memory that pages to the host, ZeRO-Offload keeps the optimizer state (and
with ZeRO-3 the parameters) in host memory, and an optimizer step in the
backward pass frees each gradient as soon as it is applied.
Sharding across data-parallel ranks follows DeepSpeed's estimators
(``estimate_zero2_model_states_mem_needs`` / ``estimate_zero3_...``, no
offload): ZeRO-1/2 keep 16-bit weights and gradients whole and split the
optimizer state plus an FP32 gradient partition; ZeRO-3 (and FSDP full shard)
split everything and hold the largest layer gathered.

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation
in Large Transformer Models"), per layer in bytes:
    no recomputation, tensor parallel t, no sequence parallel: s*b*h*(10 + 24/t + 5*a*s/(h*t))
    with sequence parallel:                                      s*b*h*(34/t + 5*a*s/(h*t))
    selective recomputation (attention core recomputed):         s*b*h*(10 + 24/t) or s*b*h*34/t with SP
    full recomputation (layer inputs only):                      2*s*b*h (/t with SP)
plus the FP32 logits of the loss, s*b*vocab*4/t.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from accelplan_server.core.memory.hwaccel_training import TrainingMethod
from accelplan_server.core.model.architecture import Architecture

NF4_BITS = 4.127
"""QLoRA's NF4 with double quantization: 4 bits plus 0.127 bits of quantization constants per weight."""
DEFAULT_LORA_RANK = 16
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")
"""PEFT's default targets for Llama-style models."""
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PREFIX_VIRTUAL_TOKENS = 20


class Optimizer(enum.IntEnum):
    """accelplan.v1.Optimizer; values equal the proto's numbers."""

    ADAMW = 1
    ADAMW_8BIT = 2
    SGD = 3
    PAGED_ADAMW_8BIT = 4
    PAGED_ADAMW = 5


MASTER_WEIGHT_BYTES = 4
"""Mixed precision's FP32 master copy per trainable parameter."""
MOMENT_BYTES = {
    Optimizer.ADAMW: 8,
    Optimizer.ADAMW_8BIT: 2,
    Optimizer.SGD: 4,
    Optimizer.PAGED_ADAMW_8BIT: 2,
    Optimizer.PAGED_ADAMW: 8,
}
"""Bytes of optimizer moments per trainable parameter: AdamW two FP32 moments, 8-bit Adam two
8-bit moments (bitsandbytes; block-wise scales are under 0.1%), SGD one FP32 momentum."""
PURE_BF16_MOMENT_BYTES = {Optimizer.ADAMW: 4, Optimizer.SGD: 2}
"""Pure BF16 (torch.optim keeps the moments in the parameters' dtype): AdamW two BF16 moments, SGD one."""
PAGED = frozenset({Optimizer.PAGED_ADAMW_8BIT, Optimizer.PAGED_ADAMW})


class Recomputation(enum.IntEnum):
    """accelplan.v1.ActivationRecomputation."""

    NONE = 1
    SELECTIVE = 2
    FULL = 3


@dataclass(frozen=True)
class FinetuneSetup:
    """How the job runs."""

    method: TrainingMethod
    micro_batch_size: int = 1
    sequence_length: int = 2048
    optimizer: Optimizer = Optimizer.ADAMW
    zero_stage: int = 0
    data_parallel_size: int = 1
    recomputation: Recomputation = Recomputation.NONE
    tensor_parallel_size: int = 1
    sequence_parallel: bool = False
    lora_rank: int = DEFAULT_LORA_RANK
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    qlora_bits: int = 4
    pure_bf16: bool = False
    """No FP32 master copy: weights, gradients and moments in BF16."""
    optimizer_in_backward: bool = False
    """Each gradient is applied and freed as soon as it exists."""
    offload_optimizer: bool = False
    """Optimizer state and master weights in host memory (ZeRO-Offload)."""
    offload_parameters: bool = False
    """16-bit parameters in host memory, fetched layer by layer (ZeRO-3 only)."""


@dataclass(frozen=True)
class FinetuneMemory:
    """Bytes per device, by part."""

    trainable_parameters: int
    weights_bytes: int
    """Policy (and student) weights, trainable and frozen."""
    frozen_models_bytes: int
    """Extra frozen models: DPO's reference, RLHF's reference and reward, distillation's teacher."""
    gradient_bytes: int
    optimizer_state_bytes: int
    activation_bytes: int
    assumptions: tuple[str, ...]
    host_bytes: int = 0
    """Kept in host memory instead: offloaded or paged optimizer state, offloaded parameters."""

    @property
    def total_bytes(self) -> int:
        """Sum of the parts."""
        return (
            self.weights_bytes
            + self.frozen_models_bytes
            + self.gradient_bytes
            + self.optimizer_state_bytes
            + self.activation_bytes
        )


def _module_shapes(arch: Architecture) -> dict[str, tuple[int, int, int]]:
    """(d_in, d_out, count per layer) of each projection LoRA can target (MoE: every expert)."""
    h, a, kv, d = arch.hidden_size, arch.num_attention_heads, arch.num_key_value_heads, arch.head_dim
    experts = max(1, arch.num_local_experts)
    inner = arch.moe_intermediate_size or arch.intermediate_size if arch.is_moe else arch.intermediate_size
    return {
        "q_proj": (h, a * d, 1),
        "k_proj": (h, kv * d, 1),
        "v_proj": (h, kv * d, 1),
        "o_proj": (a * d, h, 1),
        "gate_proj": (h, inner, experts),
        "up_proj": (h, inner, experts),
        "down_proj": (inner, h, experts),
    }


def lora_trainable_parameters(arch: Architecture, rank: int, targets: tuple[str, ...]) -> int:
    """Sum over layers and targeted projections of rank * (d_in + d_out)."""
    shapes = _module_shapes(arch)
    per_layer = sum(rank * (shapes[t][0] + shapes[t][1]) * shapes[t][2] for t in targets)
    return arch.num_hidden_layers * per_layer


def activation_bytes_per_layer(arch: Architecture, setup: FinetuneSetup) -> float:
    """Korthikanti et al. 2022, 16-bit activations, one layer, one device."""
    s, b, h, a = setup.sequence_length, setup.micro_batch_size, arch.hidden_size, arch.num_attention_heads
    t, sp = max(1, setup.tensor_parallel_size), setup.sequence_parallel
    if setup.recomputation is Recomputation.FULL:
        return 2 * s * b * h / (t if sp else 1)
    linear_part = 34 / t if sp else 10 + 24 / t
    if setup.recomputation is Recomputation.SELECTIVE:
        return s * b * h * linear_part
    return s * b * h * (linear_part + 5 * a * s / (h * t))


def estimate_finetune_memory(
    arch: Architecture, setup: FinetuneSetup, teacher: Architecture | None = None
) -> FinetuneMemory:
    """Per-device memory of a fine-tuning job on ``arch``."""
    p = arch.parameters
    m = setup.method
    n = max(1, setup.data_parallel_size)
    stage = setup.zero_stage
    notes: list[str] = []
    if m in (TrainingMethod.LORA, TrainingMethod.QLORA):
        trainable = lora_trainable_parameters(arch, setup.lora_rank, setup.lora_targets)
        notes.append(
            f"LoRA rank {setup.lora_rank} on {', '.join(setup.lora_targets)}: {trainable:,} trainable "
            "parameters (rank x (d_in + d_out) per projection per layer)."
        )
    elif m is TrainingMethod.PREFIX:
        trainable = PREFIX_VIRTUAL_TOKENS * arch.num_hidden_layers * 2 * arch.hidden_size
        notes.append(f"Prefix tuning with {PREFIX_VIRTUAL_TOKENS} virtual tokens: keys and values per layer.")
    else:
        trainable = p.total
    if trainable == p.total:
        weights = p.total * 2
    elif m is TrainingMethod.QLORA:
        bits = NF4_BITS if setup.qlora_bits <= 4 else setup.qlora_bits + 0.5
        kind = "NF4 with double quantization" if setup.qlora_bits <= 4 else "block-wise integers"
        weights = int(p.linear * bits / 8) + (p.total - p.linear) * 2 + trainable * 2
        notes.append(f"QLoRA base: linear layers at {bits:g} bits ({kind}); embeddings, head and norms 16-bit.")
    else:
        weights = p.total * 2 + trainable * 2
    grads = trainable * 2
    opt = setup.optimizer
    master = 0 if setup.pure_bf16 else MASTER_WEIGHT_BYTES
    moments = PURE_BF16_MOMENT_BYTES.get(opt, MOMENT_BYTES[opt]) if setup.pure_bf16 else MOMENT_BYTES[opt]
    on_device_moments = 0 if opt in PAGED else moments
    opt_bytes = master + on_device_moments
    host = trainable * (moments - on_device_moments)
    fp32_grad_partition = 0 if setup.pure_bf16 else 4
    optimizer = trainable * opt_bytes
    precision = (
        f"Pure BF16: 2-byte weights, gradients and {opt.name} moments ({moments} bytes per trainable parameter), "
        "no FP32 master copy."
        if setup.pure_bf16
        else f"Mixed precision: 2-byte weights and gradients, {master + moments} bytes of {opt.name} state "
        "(FP32 master copy and moments) per trainable parameter."
    )
    notes.append(precision)
    if opt in PAGED:
        notes.append(
            f"{opt.name}: the {moments}-byte moments live in CUDA unified memory, paged to host memory under "
            "pressure (bitsandbytes); counted in host memory, not on the device."
        )
    if stage == 1 or stage == 2:
        optimizer = trainable * (opt_bytes + fp32_grad_partition) // n
        host //= n
        notes.append(
            f"ZeRO-{stage} over {n} ranks (DeepSpeed's estimator): 16-bit weights and gradients whole; "
            f"optimizer state and an FP32 gradient partition split {n} ways."
        )
    elif stage == 3:
        largest = arch.largest_layer_parameters
        weights = 4 * largest + weights // n
        grads = 0
        optimizer = trainable * (opt_bytes + fp32_grad_partition) // n
        host //= n
        notes.append(
            f"ZeRO-3 / FSDP over {n} ranks (DeepSpeed's estimator): everything split, the largest layer "
            f"({largest:,} parameters) gathered at 4 bytes per parameter."
        )
    elif n > 1:
        notes.append(f"No ZeRO sharding: each of the {n} data-parallel ranks holds everything.")
    if setup.offload_optimizer:
        host += optimizer
        optimizer = 0
        notes.append("Optimizer state and master weights offloaded to host memory and stepped on the CPU.")
    if setup.offload_parameters:
        largest = arch.largest_layer_parameters
        host += max(0, weights - 4 * largest)
        weights = 4 * largest
        notes.append(
            f"Parameters offloaded to host memory; the device holds the layers being computed "
            f"({largest:,} parameters gathered)."
        )
    if setup.optimizer_in_backward and grads:
        largest = arch.largest_layer_parameters
        grads = min(grads, 2 * largest)
        notes.append(
            f"Optimizer step in the backward pass: one gradient at a time, at most the largest tensor's "
            f"({largest:,} parameters)."
        )
    frozen_extra = 0
    other = teacher or arch
    extra_models = {TrainingMethod.DPO: 1, TrainingMethod.RLHF: 2, TrainingMethod.DISTILLATION: 1}.get(m, 0)
    if extra_models:
        frozen_extra = extra_models * other.parameters.total * 2 // (n if stage == 3 else 1)
        names = {
            TrainingMethod.DPO: "a frozen reference model",
            TrainingMethod.RLHF: "frozen reference and reward models",
            TrainingMethod.DISTILLATION: "a frozen teacher",
        }[m]
        notes.append(f"{m.name} adds {names} in 16-bit.")
    if m is TrainingMethod.RLHF:
        # PPO's critic is trained like the policy.
        weights, grads, optimizer, host = 2 * weights, 2 * grads, 2 * optimizer, 2 * host
        notes.append("RLHF/PPO trains a critic the size of the policy.")
    t = max(1, setup.tensor_parallel_size)
    if t > 1:
        weights, grads, optimizer, frozen_extra, host = (
            x // t for x in (weights, grads, optimizer, frozen_extra, host)
        )
    layers = arch.num_hidden_layers
    act = layers * activation_bytes_per_layer(arch, setup)
    if setup.recomputation is not Recomputation.NONE:
        # The backward pass recomputes one layer at a time and holds its activations meanwhile.
        act += activation_bytes_per_layer(arch, replace(setup, recomputation=Recomputation.NONE))
    act += setup.sequence_length * setup.micro_batch_size * arch.vocab_size * 4 / t
    notes.append(
        f"Activations per Korthikanti et al. 2022 for micro-batch {setup.micro_batch_size} x "
        f"{setup.sequence_length} tokens, recomputation {setup.recomputation.name.lower()}"
        + (f", tensor parallel {t}{' with sequence parallelism' if setup.sequence_parallel else ''}" if t > 1 else "")
        + ", plus FP32 logits."
    )
    if setup.recomputation is not Recomputation.NONE:
        notes.append("Recomputation holds one layer's full activations at a time during the backward pass.")
    if arch.is_ssm:
        notes.append("State-space mixers: activations use the transformer formula above, an approximation.")
    return FinetuneMemory(
        trainable, int(weights), int(frozen_extra), int(grads), int(optimizer), int(act), tuple(notes), int(host)
    )
