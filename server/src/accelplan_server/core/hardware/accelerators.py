"""The accelerator and fleet model: device kinds, families, ranks and supported precisions.

Behaviour follows ai-hwaccel 1.2.0; enum values equal accelplan.v1's numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

from accelplan_server.core.memo import Memoizing
from accelplan_server.core.quantization import Quantization as Q


class AcceleratorType(enum.IntEnum):
    """Kind of device (accelplan.v1.AcceleratorType)."""

    CPU = 1
    CUDA_GPU = 2
    ROCM_GPU = 3
    METAL_GPU = 4
    VULKAN_GPU = 5
    INTEL_NPU = 6
    AMD_XDNA_NPU = 7
    APPLE_NPU = 8
    TPU = 9
    GAUDI = 10
    AWS_NEURON = 11
    QUALCOMM_AI100 = 12
    INTEL_ONEAPI = 13
    CEREBRAS_WSE = 14
    GRAPHCORE_IPU = 15
    GROQ_LPU = 16
    SAMSUNG_NPU = 17
    MEDIATEK_APU = 18


class Family(enum.IntEnum):
    """How the planner groups device kinds (accelplan.v1.AcceleratorFamily)."""

    CPU = 1
    GPU = 2
    NPU = 3
    TPU = 4
    AI_ASIC = 5


class TpuVersion(enum.IntEnum):
    """TPU generation; 0 means not stated."""

    UNSPECIFIED = 0
    V4 = 1
    V5E = 2
    V5P = 3


class GaudiGeneration(enum.IntEnum):
    """Gaudi generation; 0 means not stated."""

    UNSPECIFIED = 0
    GAUDI2 = 1
    GAUDI3 = 2


class NeuronChipType(enum.IntEnum):
    """AWS Neuron chip kind; 0 means not stated."""

    UNSPECIFIED = 0
    INFERENTIA = 1
    TRAINIUM = 2


class InterconnectKind(enum.IntEnum):
    """Link technology (accelplan.v1.InterconnectKind); 0 means not stated."""

    UNSPECIFIED = 0
    NVLINK = 1
    NVSWITCH = 2
    XGMI_INFINITY_FABRIC = 3
    INFINIBAND = 4
    ROCE = 5
    ROCE_V2 = 6
    ICI = 7


T = AcceleratorType
FAMILY: dict[AcceleratorType, Family] = {
    T.CPU: Family.CPU,
    T.CUDA_GPU: Family.GPU,
    T.ROCM_GPU: Family.GPU,
    T.METAL_GPU: Family.GPU,
    T.VULKAN_GPU: Family.GPU,
    T.INTEL_ONEAPI: Family.GPU,
    T.INTEL_NPU: Family.NPU,
    T.AMD_XDNA_NPU: Family.NPU,
    T.APPLE_NPU: Family.NPU,
    T.SAMSUNG_NPU: Family.NPU,
    T.MEDIATEK_APU: Family.NPU,
    T.TPU: Family.TPU,
    T.GAUDI: Family.AI_ASIC,
    T.AWS_NEURON: Family.AI_ASIC,
    T.QUALCOMM_AI100: Family.AI_ASIC,
    T.CEREBRAS_WSE: Family.AI_ASIC,
    T.GRAPHCORE_IPU: Family.AI_ASIC,
    T.GROQ_LPU: Family.AI_ASIC,
}

_ALL = (Q.NONE, Q.FLOAT16, Q.BFLOAT16, Q.INT8, Q.INT4)
_ASIC = (Q.NONE, Q.FLOAT16, Q.BFLOAT16, Q.INT8)
# (supported levels widest first, preferred level) per kind, as in ai-hwaccel 1.2.0.
_SUPPORT: dict[AcceleratorType, tuple[tuple[Q, ...], Q]] = {
    T.CPU: (_ALL, Q.FLOAT16),
    T.CUDA_GPU: (_ALL, Q.FLOAT16),
    T.ROCM_GPU: (_ALL, Q.FLOAT16),
    T.METAL_GPU: (_ALL, Q.FLOAT16),
    T.VULKAN_GPU: (_ALL, Q.FLOAT16),
    T.INTEL_ONEAPI: (_ALL, Q.FLOAT16),
    T.INTEL_NPU: ((Q.INT8, Q.INT4), Q.INT8),
    T.AMD_XDNA_NPU: ((Q.INT8, Q.INT4), Q.INT8),
    T.APPLE_NPU: ((Q.INT8, Q.INT4), Q.INT8),
    T.SAMSUNG_NPU: ((Q.INT8, Q.INT4), Q.INT8),
    T.MEDIATEK_APU: ((Q.INT8, Q.INT4), Q.INT8),
    T.TPU: ((Q.NONE, Q.BFLOAT16, Q.INT8), Q.BFLOAT16),
    T.GAUDI: (_ASIC, Q.BFLOAT16),
    T.AWS_NEURON: (_ASIC, Q.BFLOAT16),
    T.QUALCOMM_AI100: ((Q.FLOAT16, Q.INT8, Q.INT4), Q.INT8),
    T.CEREBRAS_WSE: (_ASIC, Q.BFLOAT16),
    T.GRAPHCORE_IPU: ((Q.NONE, Q.FLOAT16, Q.INT8), Q.FLOAT16),
    T.GROQ_LPU: ((Q.FLOAT16, Q.INT8, Q.INT4), Q.INT8),
}

_RANK: dict[AcceleratorType, int] = {
    T.CEREBRAS_WSE: 85,
    T.CUDA_GPU: 60,
    T.GROQ_LPU: 55,
    T.ROCM_GPU: 50,
    T.GRAPHCORE_IPU: 48,
    T.INTEL_ONEAPI: 42,
    T.METAL_GPU: 40,
    T.QUALCOMM_AI100: 38,
    T.VULKAN_GPU: 35,
    T.APPLE_NPU: 30,
    T.AMD_XDNA_NPU: 25,
    T.INTEL_NPU: 20,
    T.SAMSUNG_NPU: 18,
    T.MEDIATEK_APU: 15,
    T.CPU: 10,
}
_TPU_RANK = {TpuVersion.V5P: 80, TpuVersion.V4: 70, TpuVersion.V5E: 55, TpuVersion.UNSPECIFIED: 70}
_GAUDI_RANK = {GaudiGeneration.GAUDI3: 75, GaudiGeneration.GAUDI2: 65, GaudiGeneration.UNSPECIFIED: 65}
_NEURON_RANK = {NeuronChipType.TRAINIUM: 58, NeuronChipType.INFERENTIA: 45, NeuronChipType.UNSPECIFIED: 45}


GIB = 2**30
TPU_HBM_PER_CHIP_BYTES = {TpuVersion.V4: 32 * GIB, TpuVersion.V5E: 16 * GIB, TpuVersion.V5P: 95 * GIB}
"""Per-chip HBM by TPU generation (ai-hwaccel 1.2.0; Google Cloud TPU system architecture pages)."""
GAUDI_HBM_BYTES = {GaudiGeneration.GAUDI2: 96 * GIB, GaudiGeneration.GAUDI3: 128 * GIB}
"""HBM per Gaudi device by generation (ai-hwaccel 1.2.0; Intel Gaudi 2 and Gaudi 3 product briefs)."""


def default_memory_bytes(kind: AcceleratorType | None, tpu_version: int, gaudi_generation: int, chips: int) -> int:
    """Memory implied by a TPU's version and chip count or a Gaudi's generation; 0 when none is."""
    if kind is AcceleratorType.TPU and tpu_version in TPU_HBM_PER_CHIP_BYTES:
        return TPU_HBM_PER_CHIP_BYTES[TpuVersion(tpu_version)] * max(1, chips)
    if kind is AcceleratorType.GAUDI and gaudi_generation in GAUDI_HBM_BYTES:
        return GAUDI_HBM_BYTES[GaudiGeneration(gaudi_generation)]
    return 0


@dataclass(frozen=True)
class Accelerator:
    """One device of a fleet."""

    type: AcceleratorType
    memory_bytes: int
    device_id: int = 0
    available: bool = True
    tpu_chip_count: int = 0
    tpu_version: TpuVersion = TpuVersion.UNSPECIFIED
    gaudi_generation: GaudiGeneration = GaudiGeneration.UNSPECIFIED
    neuron_chip_type: NeuronChipType = NeuronChipType.UNSPECIFIED
    neuron_core_count: int = 0
    numa_node: int | None = None
    memory_bandwidth_gbps: float = 0.0
    """Memory bandwidth in GB/s (10^9 bytes); 0 when unknown."""
    name: str = ""
    sku: str = ""
    """Catalogue accelerator model this device is, if the caller named one."""
    peak_dense_tflops_16bit: float = 0.0
    """Dense FP16/BF16 peak in TFLOPS; 0 when unknown."""
    supports_fp8: bool = False
    """FP8 matrix units (from the sku); ai-hwaccel's per-kind tables predate FP8."""
    sku_quantizations: tuple[Q, ...] = ()
    """Levels the sku's catalogue row lists; empty without a sku (the per-kind table applies)."""

    @property
    def family(self) -> Family:
        """The planner's group for this kind."""
        return FAMILY[self.type]

    @property
    def rank(self) -> int:
        """Preference rank: higher is better (ai-hwaccel's ordering)."""
        if self.type is T.TPU:
            return _TPU_RANK[self.tpu_version]
        if self.type is T.GAUDI:
            return _GAUDI_RANK[self.gaudi_generation]
        if self.type is T.AWS_NEURON:
            return _NEURON_RANK[self.neuron_chip_type]
        return _RANK[self.type]

    @property
    def supported_quantizations(self) -> tuple[Q, ...]:
        """Levels the device runs, widest first: its sku's list, else ai-hwaccel's per-kind table."""
        if self.sku_quantizations:
            return self.sku_quantizations
        levels = _SUPPORT[self.type][0]
        return (*levels, Q.FP8) if self.supports_fp8 else levels

    @property
    def preferred_quantization(self) -> Q:
        """The level the device runs best at."""
        return _SUPPORT[self.type][1]

    @property
    def spec_key(self) -> tuple[object, ...]:
        """The fields that decide the device's performance specs (not its id, NUMA node or name)."""
        return (
            self.type,
            self.tpu_version,
            self.gaudi_generation,
            self.neuron_chip_type,
            self.sku,
            self.tpu_chip_count,
            self.memory_bytes,
            self.memory_bandwidth_gbps,
            self.peak_dense_tflops_16bit,
        )

    @property
    def chips(self) -> int:
        """TPU chips in the device (at least 1); 1 for every other kind."""
        return max(1, self.tpu_chip_count) if self.type is T.TPU else 1

    def supports(self, quantization: Q) -> bool:
        """Whether the device can run weights at this level."""
        return quantization in self.supported_quantizations


@dataclass(frozen=True)
class Interconnect:
    """A link technology present in the fleet."""

    kind: InterconnectKind
    bandwidth_gbps: float = 0.0
    name: str = ""


@dataclass(frozen=True)
class Fleet(Memoizing):
    """Devices and links a plan may use (facts derived from it are kept with ``memo``)."""

    accelerators: tuple[Accelerator, ...] = ()
    interconnects: tuple[Interconnect, ...] = field(default_factory=tuple)

    def available(self) -> tuple[tuple[int, Accelerator], ...]:
        """(index in fleet, device) for every available device, in fleet order."""
        return self._available

    @cached_property
    def _available(self) -> tuple[tuple[int, Accelerator], ...]:
        return tuple((i, a) for i, a in enumerate(self.accelerators) if a.available)


class RequirementKind(enum.IntEnum):
    """What a workload needs (accelplan.v1.AcceleratorRequirementKind); 0 means none."""

    UNSPECIFIED = 0
    NONE = 1
    GPU = 2
    TPU = 3
    GAUDI = 4
    AWS_NEURON = 5
    GPU_OR_TPU = 6
    ANY_ACCELERATOR = 7


def satisfies(device: Accelerator, kind: RequirementKind, min_tpu_chips: int = 0) -> bool:
    """Whether an available device meets a requirement (unavailable devices never do)."""
    if not device.available:
        return False
    family = device.family
    if kind in (RequirementKind.UNSPECIFIED, RequirementKind.NONE):
        return True
    if kind is RequirementKind.GPU:
        return family is Family.GPU
    if kind is RequirementKind.TPU:
        return device.type is T.TPU and device.chips >= max(1, min_tpu_chips)
    if kind is RequirementKind.GAUDI:
        return device.type is T.GAUDI
    if kind is RequirementKind.AWS_NEURON:
        return device.type is T.AWS_NEURON
    if kind is RequirementKind.GPU_OR_TPU:
        return family in (Family.GPU, Family.TPU)
    return family is not Family.CPU
