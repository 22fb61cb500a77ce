import pytest

from accelplan_server.core.hardware.accelerators import (
    FAMILY,
    Accelerator,
    AcceleratorType,
    Family,
    GaudiGeneration,
    NeuronChipType,
    RequirementKind,
    TpuVersion,
    default_memory_bytes,
    satisfies,
)
from accelplan_server.core.quantization import Quantization as Q

T = AcceleratorType
GIB = 2**30


def dev(kind: T, **kw: object) -> Accelerator:
    return Accelerator(kind, kw.pop("memory_bytes", 16 * GIB), **kw)  # type: ignore[arg-type]


def test_enum_numbers_match_the_proto() -> None:
    from accelplan.v1 import hardware_pb2 as pb

    for t in T:
        assert pb.AcceleratorType.Name(t.value) == f"ACCELERATOR_TYPE_{t.name}"
    assert len(T) == 18
    for f in Family:
        assert pb.AcceleratorFamily.Name(f.value) == f"ACCELERATOR_FAMILY_{f.name}"
    for k in RequirementKind:
        assert pb.AcceleratorRequirementKind.Name(k.value) == f"ACCELERATOR_REQUIREMENT_KIND_{k.name}"


def test_every_type_has_a_family() -> None:
    assert set(FAMILY) == set(T)
    assert {t for t, f in FAMILY.items() if f is Family.GPU} == {
        T.CUDA_GPU,
        T.ROCM_GPU,
        T.METAL_GPU,
        T.VULKAN_GPU,
        T.INTEL_ONEAPI,
    }
    assert {t for t, f in FAMILY.items() if f is Family.NPU} == {
        T.INTEL_NPU,
        T.AMD_XDNA_NPU,
        T.APPLE_NPU,
        T.SAMSUNG_NPU,
        T.MEDIATEK_APU,
    }
    assert {t for t, f in FAMILY.items() if f is Family.AI_ASIC} == {
        T.GAUDI,
        T.AWS_NEURON,
        T.QUALCOMM_AI100,
        T.CEREBRAS_WSE,
        T.GRAPHCORE_IPU,
        T.GROQ_LPU,
    }


@pytest.mark.parametrize(
    ("device", "rank"),
    [
        (dev(T.CEREBRAS_WSE), 85),
        (dev(T.TPU, tpu_version=TpuVersion.V5P), 80),
        (dev(T.GAUDI, gaudi_generation=GaudiGeneration.GAUDI3), 75),
        (dev(T.TPU, tpu_version=TpuVersion.V4), 70),
        (dev(T.GAUDI, gaudi_generation=GaudiGeneration.GAUDI2), 65),
        (dev(T.CUDA_GPU), 60),
        (dev(T.AWS_NEURON, neuron_chip_type=NeuronChipType.TRAINIUM), 58),
        (dev(T.TPU, tpu_version=TpuVersion.V5E), 55),
        (dev(T.GROQ_LPU), 55),
        (dev(T.ROCM_GPU), 50),
        (dev(T.GRAPHCORE_IPU), 48),
        (dev(T.AWS_NEURON, neuron_chip_type=NeuronChipType.INFERENTIA), 45),
        (dev(T.INTEL_ONEAPI), 42),
        (dev(T.METAL_GPU), 40),
        (dev(T.QUALCOMM_AI100), 38),
        (dev(T.VULKAN_GPU), 35),
        (dev(T.APPLE_NPU), 30),
        (dev(T.AMD_XDNA_NPU), 25),
        (dev(T.INTEL_NPU), 20),
        (dev(T.SAMSUNG_NPU), 18),
        (dev(T.MEDIATEK_APU), 15),
        (dev(T.CPU), 10),
    ],
)
def test_ranks(device: Accelerator, rank: int) -> None:
    assert device.rank == rank


ALL = {Q.NONE, Q.FLOAT16, Q.BFLOAT16, Q.INT8, Q.INT4}


@pytest.mark.parametrize(
    ("kind", "supported", "preferred"),
    [
        (T.CPU, ALL, Q.FLOAT16),
        (T.CUDA_GPU, ALL, Q.FLOAT16),
        (T.ROCM_GPU, ALL, Q.FLOAT16),
        (T.METAL_GPU, ALL, Q.FLOAT16),
        (T.VULKAN_GPU, ALL, Q.FLOAT16),
        (T.INTEL_ONEAPI, ALL, Q.FLOAT16),
        (T.INTEL_NPU, {Q.INT8, Q.INT4}, Q.INT8),
        (T.AMD_XDNA_NPU, {Q.INT8, Q.INT4}, Q.INT8),
        (T.APPLE_NPU, {Q.INT8, Q.INT4}, Q.INT8),
        (T.SAMSUNG_NPU, {Q.INT8, Q.INT4}, Q.INT8),
        (T.MEDIATEK_APU, {Q.INT8, Q.INT4}, Q.INT8),
        (T.TPU, {Q.NONE, Q.BFLOAT16, Q.INT8}, Q.BFLOAT16),
        (T.GAUDI, {Q.NONE, Q.BFLOAT16, Q.FLOAT16, Q.INT8}, Q.BFLOAT16),
        (T.AWS_NEURON, {Q.NONE, Q.BFLOAT16, Q.FLOAT16, Q.INT8}, Q.BFLOAT16),
        (T.QUALCOMM_AI100, {Q.FLOAT16, Q.INT8, Q.INT4}, Q.INT8),
        (T.CEREBRAS_WSE, {Q.NONE, Q.BFLOAT16, Q.FLOAT16, Q.INT8}, Q.BFLOAT16),
        (T.GRAPHCORE_IPU, {Q.NONE, Q.FLOAT16, Q.INT8}, Q.FLOAT16),
        (T.GROQ_LPU, {Q.FLOAT16, Q.INT8, Q.INT4}, Q.INT8),
    ],
)
def test_support_and_preference(kind: T, supported: set[Q], preferred: Q) -> None:
    d = dev(kind)
    assert set(d.supported_quantizations) == supported
    assert d.preferred_quantization is preferred
    assert d.supports(preferred)
    assert list(d.supported_quantizations) == sorted(d.supported_quantizations)


R = RequirementKind


@pytest.mark.parametrize(
    ("kind", "matching"),
    [
        (R.NONE, {T.CPU, T.CUDA_GPU, T.TPU, T.GAUDI, T.AWS_NEURON, T.APPLE_NPU, T.GROQ_LPU}),
        (R.UNSPECIFIED, {T.CPU, T.CUDA_GPU, T.TPU, T.GAUDI, T.AWS_NEURON, T.APPLE_NPU, T.GROQ_LPU}),
        (R.GPU, {T.CUDA_GPU}),
        (R.TPU, {T.TPU}),
        (R.GAUDI, {T.GAUDI}),
        (R.AWS_NEURON, {T.AWS_NEURON}),
        (R.GPU_OR_TPU, {T.CUDA_GPU, T.TPU}),
        (R.ANY_ACCELERATOR, {T.CUDA_GPU, T.TPU, T.GAUDI, T.AWS_NEURON, T.APPLE_NPU, T.GROQ_LPU}),
    ],
)
def test_requirements(kind: R, matching: set[T]) -> None:
    fleet = [dev(t) for t in (T.CPU, T.CUDA_GPU, T.TPU, T.GAUDI, T.AWS_NEURON, T.APPLE_NPU, T.GROQ_LPU)]
    assert {d.type for d in fleet if satisfies(d, kind)} == matching


def test_unavailable_never_matches() -> None:
    for kind in R:
        assert not satisfies(dev(T.CUDA_GPU, available=False), kind)


def test_tpu_min_chips() -> None:
    tpu = dev(T.TPU, tpu_chip_count=4)
    assert satisfies(tpu, R.TPU, 4)
    assert not satisfies(tpu, R.TPU, 5)
    assert satisfies(dev(T.TPU), R.TPU, 0)  # 0 chips counts as 1


def test_generation_memory_defaults() -> None:
    assert default_memory_bytes(T.TPU, TpuVersion.V5P, 0, 4) == 4 * 95 * GIB
    assert default_memory_bytes(T.TPU, TpuVersion.V4, 0, 0) == 32 * GIB
    assert default_memory_bytes(T.TPU, TpuVersion.V5E, 0, 8) == 8 * 16 * GIB
    assert default_memory_bytes(T.GAUDI, 0, GaudiGeneration.GAUDI3, 0) == 128 * GIB
    assert default_memory_bytes(T.GAUDI, 0, GaudiGeneration.GAUDI2, 0) == 96 * GIB
    assert default_memory_bytes(T.TPU, TpuVersion.UNSPECIFIED, 0, 4) == 0
    assert default_memory_bytes(T.CUDA_GPU, 0, 0, 0) == 0
