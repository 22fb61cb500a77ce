"""Resolving a fleet device to the specs the performance model needs.

A device's own figures win; what it leaves out comes from its catalogue sku,
else from the stand-in sku for its kind (throughput.DEFAULT_SKU). Every
figure taken from a stand-in is named in the assumptions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from accelplan_server.core.catalog import AcceleratorModel, Catalog
from accelplan_server.core.hardware.accelerators import Accelerator
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.memo import Memoizing
from accelplan_server.core.quantization import Quantization

COMPUTE_DTYPE = {
    Quantization.NONE: "fp32",
    Quantization.FLOAT16: "fp16",
    Quantization.BFLOAT16: "bf16",
    Quantization.INT8: "fp16",  # weight-only INT8 kernels multiply in 16-bit
    Quantization.INT4: "fp16",
    Quantization.FP8: "fp8",
}
"""Precision the matrix multiplies run at for each weight level."""


@dataclass(frozen=True)
class DeviceSpecs:
    """What the roofline needs of one device (per device; a multi-chip TPU counts all its chips)."""

    memory_bytes: int
    bandwidth_gbps: float
    peak_tflops: dict[str, float]
    label: str
    notes: tuple[str, ...] = ()

    def peak_for(self, quantization: Quantization) -> float:
        """Dense peak TFLOPS at the level's compute precision; 0 when unknown."""
        dtype = COMPUTE_DTYPE[quantization]
        return (
            self.peak_tflops.get(dtype)
            or (self.peak_tflops.get("bf16", 0.0) if dtype == "fp16" else 0.0)
            or (self.peak_tflops.get("fp16", 0.0) if dtype == "bf16" else 0.0)
        )


@dataclass(frozen=True, eq=False)
class Arrangement(Memoizing):
    """Devices as pipeline stages of tensor-parallel groups, reduced to what the roofline needs at one precision.

    Depends only on the devices, so it is worked out once for a plan's lineup
    and reused for every model placed on it (with facts derived from it, ``memo``).
    """

    tensor_parallel: int
    pipeline_parallel: int
    stage_bandwidths_gbps: tuple[float, ...]
    """Each stage's slowest memory bandwidth: it sets the stage's pace."""
    stage_peaks_tflops: tuple[float, ...]
    """Each stage's lowest dense peak at the precision; 0 when a member's is unknown."""
    total_peak_tflops: float
    """Every device's dense peak at the precision, summed."""
    peaks_known: bool
    """Every device has a dense peak at the precision."""
    notes: tuple[str, ...]
    """The devices' assumptions, each once."""

    @staticmethod
    def of(
        specs: Sequence[DeviceSpecs], quantization: Quantization, tensor_parallel: int, pipeline_parallel: int
    ) -> Arrangement:
        """``specs`` lists tensor_parallel * pipeline_parallel devices, stage by stage."""
        t = tensor_parallel
        # Alike devices share one DeviceSpecs (SpecResolver): each distinct one is looked at once.
        distinct = dict(zip(map(id, specs), specs, strict=True))
        peak_of = {key: d.peak_for(quantization) for key, d in distinct.items()}
        peaks = list(map(peak_of.__getitem__, map(id, specs)))
        bandwidths = [d.bandwidth_gbps for d in specs]
        if t > 1:
            stages = range(0, len(specs), t)
            bandwidths = [min(bandwidths[s : s + t]) for s in stages]
            stage_peaks = [min(peaks[s : s + t]) for s in stages]
        else:
            stage_peaks = peaks
        counts = Counter(map(id, specs))
        notes = dict.fromkeys(n for d in distinct.values() for n in d.notes)
        return Arrangement(
            tensor_parallel,
            pipeline_parallel,
            tuple(bandwidths),
            tuple(stage_peaks),
            sum(peak_of[key] * counts[key] for key in distinct),
            all(peak_of.values()),
            tuple(notes),
        )


def resolve(device: Accelerator, catalog: Catalog, bandwidths: BandwidthTable) -> DeviceSpecs:
    """The device's specs: its own figures, then its sku's, then its kind's stand-in."""
    notes: list[str] = []
    chips = device.chips
    sku_model: AcceleratorModel | None = catalog.accelerator(device.sku) if device.sku else None
    stand_in = sku_model
    if stand_in is None:
        default = bandwidths.default_for(device)
        stand_in = catalog.accelerator(default.sku) if default else None
    bandwidth, defaulted = bandwidths.bandwidth_gbps(device)
    if sku_model is not None and device.memory_bandwidth_gbps <= 0:
        bandwidth, defaulted = sku_model.memory_bandwidth_gbps * chips, False
    if defaulted and stand_in is not None:
        notes.append(
            f"{device.type.name} bandwidth unknown; assumed {stand_in.name}'s "
            f"{stand_in.memory_bandwidth_gbps:g} GB/s per chip."
        )
    peaks = {k: v * chips for k, v in (stand_in.peak_tflops if stand_in else {}).items()}
    if device.peak_dense_tflops_16bit > 0:
        peaks["fp16"] = peaks["bf16"] = device.peak_dense_tflops_16bit
    elif sku_model is None and stand_in is not None and peaks:
        notes.append(f"{device.type.name} peak FLOPS unknown; assumed {stand_in.name}'s dense peaks.")
    label = sku_model.name if sku_model else device.type.name
    return DeviceSpecs(device.memory_bytes, bandwidth, peaks, label, tuple(notes))


class SpecResolver:
    """``resolve`` memoised on the fields that decide a device's specs, for fleets of many alike devices."""

    MAX_ENTRIES = 4096
    MAX_DEVICE_OBJECTS = 65536

    def __init__(self, catalog: Catalog, bandwidths: BandwidthTable) -> None:
        self.catalog = catalog
        self.bandwidths = bandwidths
        self._cache: dict[tuple[object, ...], DeviceSpecs] = {}

    def __call__(self, device: Accelerator) -> DeviceSpecs:
        """The device's specs (device_id, NUMA node, name and availability do not matter)."""
        key = device.spec_key
        specs = self._cache.get(key)
        if specs is None:
            specs = resolve(device, self.catalog, self.bandwidths)
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = specs
        return specs
