import pytest

from accelplan_server.core.catalog import Catalog
from accelplan_server.core.hardware.accelerators import (
    Accelerator,
    AcceleratorType,
    Family,
    Fleet,
    GaudiGeneration,
    TpuVersion,
)
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.specs import SpecResolver
from accelplan_server.core.model.footprint import ModelProfile, footprint
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.planning.plan_speed import roofline_speed
from accelplan_server.core.planning.sharding import Strategy
from accelplan_server.core.planning.suggest import Suggestion
from accelplan_server.core.planning.suggest import suggest_quantization as suggest_core
from accelplan_server.core.quantization import Quantization as Q

T = AcceleratorType
GIB = 2**30
B70 = 70_000_000_000  # FP16/BF16 168e9, INT8 84e9, INT4 42e9 bytes


class Ctx:
    def __init__(self, catalog: Catalog, table: BandwidthTable) -> None:
        self.catalog, self.table = catalog, table


@pytest.fixture(scope="module")
def bandwidths(catalog: Catalog, bandwidths: BandwidthTable) -> Ctx:
    return Ctx(catalog, bandwidths)


def suggest_quantization(params: int, f: Fleet, ctx: Ctx, *, consider_sharding: bool = False) -> Suggestion:
    profile = ModelProfile.from_count(params)
    return suggest_core(
        lambda q: footprint(profile, WeightFormat(q)),
        f,
        lambda q, sub: roofline_speed(profile, WeightFormat(q), sub, SpecResolver(ctx.catalog, ctx.table)),
        consider_sharding=consider_sharding,
    )


def fleet(*devices: Accelerator) -> Fleet:
    return Fleet(devices)


@pytest.mark.parametrize(
    ("devices", "level", "family"),
    [
        ((Accelerator(T.TPU, 160 * GIB, tpu_version=TpuVersion.V5P),), Q.BFLOAT16, Family.TPU),
        ((Accelerator(T.TPU, 80 * GIB, tpu_version=TpuVersion.V5P),), Q.INT8, Family.TPU),
        # TPU has no INT4 step: falls through to the GPU.
        ((Accelerator(T.TPU, 64 * GIB), Accelerator(T.CUDA_GPU, 48 * GIB)), Q.INT4, Family.GPU),
        ((Accelerator(T.GAUDI, 160 * GIB, gaudi_generation=GaudiGeneration.GAUDI3),), Q.BFLOAT16, Family.AI_ASIC),
        ((Accelerator(T.GAUDI, 96 * GIB),), Q.INT8, Family.AI_ASIC),
        ((Accelerator(T.CUDA_GPU, 160 * GIB),), Q.FLOAT16, Family.GPU),
        ((Accelerator(T.CUDA_GPU, 80 * GIB),), Q.INT8, Family.GPU),
        ((Accelerator(T.ROCM_GPU, 40 * GIB),), Q.INT4, Family.GPU),
        ((Accelerator(T.APPLE_NPU, 80 * GIB),), Q.INT8, Family.NPU),
        ((Accelerator(T.APPLE_NPU, 40 * GIB),), Q.INT4, Family.NPU),
        # Other ASICs are not considered: CPU fallback with the default 16 GiB -> nothing fits -> INT4.
        ((Accelerator(T.AWS_NEURON, 512 * GIB),), Q.INT4, Family.CPU),
        ((Accelerator(T.CPU, 200 * GIB),), Q.FLOAT16, Family.CPU),
        ((Accelerator(T.CPU, 100 * GIB),), Q.INT8, Family.CPU),
        ((), Q.INT4, Family.CPU),
    ],
)
def test_ai_hwaccel_order(devices: tuple[Accelerator, ...], level: Q, family: Family, bandwidths: Ctx) -> None:
    s = suggest_quantization(B70, fleet(*devices), bandwidths)
    assert (s.quantization, s.family) == (level, family)
    assert s.plan is None


def test_uses_largest_available_device_not_sum(bandwidths: Ctx) -> None:
    devices = (
        Accelerator(T.CUDA_GPU, 48 * GIB),
        Accelerator(T.CUDA_GPU, 80 * GIB),
        Accelerator(T.CUDA_GPU, 200 * GIB, available=False),
    )
    s = suggest_quantization(B70, fleet(*devices), bandwidths)
    assert s.quantization is Q.INT8
    assert s.available_memory_bytes == 80 * GIB
    assert s.required_memory_bytes == 84_000_000_000


def test_nothing_fits_is_int4_and_says_so(bandwidths: Ctx) -> None:
    s = suggest_quantization(10**13, fleet(), bandwidths)
    assert s.quantization is Q.INT4 and not s.fits
    assert "16 GiB" in s.reason


def test_cpu_default_is_16_gib(bandwidths: Ctx) -> None:
    # 7B at FP16 is 16.8e9 bytes > 16 GiB (17.18e9)? No: 16.8e9 < 17.18e9, so FP16 fits.
    s = suggest_quantization(7_000_000_000, fleet(), bandwidths)
    assert s.quantization is Q.FLOAT16 and s.available_memory_bytes == 16 * GIB


def test_sharding_is_opt_in(bandwidths: Ctx) -> None:
    gpus = fleet(*(Accelerator(T.CUDA_GPU, 24 * GIB) for _ in range(8)))
    assert suggest_quantization(B70, gpus, bandwidths).quantization is Q.INT4  # 42e9 > 24 GiB -> CPU path
    s = suggest_quantization(B70, gpus, bandwidths, consider_sharding=True)
    assert s.quantization is Q.FLOAT16  # 168e9 <= 8 x 24 GiB
    assert s.plan is not None and s.plan.device_count == 8
    assert s.plan.strategy is Strategy.PIPELINE_PARALLEL
    assert s.available_memory_bytes == 8 * 24 * GIB


def test_sharding_keeps_caller_indices_and_family(bandwidths: Ctx) -> None:
    devices = (
        Accelerator(T.CPU, 64 * GIB),
        Accelerator(T.CUDA_GPU, 48 * GIB),
        Accelerator(T.CUDA_GPU, 48 * GIB),
        Accelerator(T.GROQ_LPU, 48 * GIB),
    )
    s = suggest_quantization(B70, fleet(*devices), bandwidths, consider_sharding=True)
    assert s.quantization is Q.INT8  # FP16 168e9 > 96 GiB; INT8 84e9 fits both GPUs
    assert s.plan is not None
    assert [sh.device_index for sh in s.plan.shards] == [1, 2]
