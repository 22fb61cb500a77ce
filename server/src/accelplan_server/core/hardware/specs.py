"""Resolving a fleet device to the specs the performance model needs.

A device's own figures win; what it leaves out comes from its catalogue sku,
else from the stand-in sku for its kind (throughput.DEFAULT_SKU). Every
figure taken from a stand-in is named in the assumptions.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cachetools

from accelplan_server.core.catalog import AcceleratorModel, Catalog
from accelplan_server.core.hardware.accelerators import Accelerator, AcceleratorType
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.memo import Memoizing
from accelplan_server.core.quantization import Quantization

DEFAULT_DECODE_MBU = 0.8
"""Decode memory-bandwidth utilisation for a device without a measured figure in the catalogue."""

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
    decode_mbu: float = 0.0
    """Measured share of bandwidth sustained by decode weight reads (catalogue); 0 means unknown (the default)."""
    fp16_accumulate_tflops: float = 0.0
    """Dense FP16 rate with FP16 accumulation where it differs from the FP32-accumulate peak; 0: the same."""
    metal: bool = False
    """An Apple GPU: engines run their Metal kernels, which have their own figures."""

    def fp16_accumulate_peak_for(self, quantization: Quantization) -> float:
        """The dense peak for an engine that accumulates 16-bit matrix multiplies in FP16."""
        if COMPUTE_DTYPE[quantization] == "fp16" and self.fp16_accumulate_tflops > 0:
            return self.fp16_accumulate_tflops
        return self.peak_for(quantization)

    @property
    def effective_mbu(self) -> float:
        """The measured decode MBU, else the default."""
        return self.decode_mbu or DEFAULT_DECODE_MBU

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
    stage_effective_bandwidths_gbps: tuple[float, ...] = ()
    """Each stage's slowest bandwidth x decode MBU: the rate its weight reads sustain."""
    slowest_mbu: float = DEFAULT_DECODE_MBU
    """The decode MBU of the device that sets the slowest stage's pace."""
    mbu_note: str = ""
    """How each device's decode MBU was chosen, for the assumption lines."""
    total_fp16_accumulate_tflops: float = 0.0
    """Every device's dense peak for FP16-accumulating engines (DeviceSpecs.fp16_accumulate_peak_for), summed."""
    all_metal: bool = False
    """Every device is an Apple GPU (the engine's Metal figures apply)."""

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
        effective = [d.bandwidth_gbps * d.effective_mbu for d in specs]
        mbus = [d.effective_mbu for d in specs]
        if t > 1:
            stages = range(0, len(specs), t)
            bandwidths = [min(bandwidths[s : s + t]) for s in stages]
            slowest = [min(range(s, s + t), key=effective.__getitem__) for s in stages]
            effective = [effective[i] for i in slowest]
            mbus = [mbus[i] for i in slowest]
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
            tuple(effective),
            mbus[min(range(len(effective)), key=effective.__getitem__)] if effective else DEFAULT_DECODE_MBU,
            _mbu_note(distinct.values()),
            sum(d.fp16_accumulate_peak_for(quantization) * counts[key] for key, d in distinct.items()),
            all(d.metal for d in distinct.values()),
        )


def _mbu_note(devices: Iterable[DeviceSpecs]) -> str:
    """'X% of peak memory bandwidth (...)' for each distinct device's decode MBU."""
    parts = dict.fromkeys(
        f"{d.label}'s measured {d.decode_mbu:.0%}"
        if d.decode_mbu
        else f"{DEFAULT_DECODE_MBU:.0%} for {d.label} (no measured figure)"
        for d in devices
    )
    return "a per-device share of peak memory bandwidth (MBU): " + ", ".join(parts)


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
    # A measured utilisation belongs to the device model, whatever bandwidth figure the caller gave.
    mbu = sku_model.decode_mbu if sku_model is not None else 0.0
    fp16_acc = 0.0
    if sku_model is not None and sku_model.fp16_accumulate_tflops > 0:
        sku_peak = sku_model.peak_tflops.get("fp16") or sku_model.peak_tflops.get("bf16") or 0.0
        if device.peak_dense_tflops_16bit <= 0 or math.isclose(device.peak_dense_tflops_16bit, sku_peak * chips):
            fp16_acc = sku_model.fp16_accumulate_tflops * chips
    metal = device.type is AcceleratorType.METAL_GPU
    return DeviceSpecs(device.memory_bytes, bandwidth, peaks, label, tuple(notes), mbu, fp16_acc, metal)


class SpecResolver:
    """``resolve`` memoised on the fields that decide a device's specs, for fleets of many alike devices."""

    MAX_ENTRIES = 4096
    """Specs kept, oldest first out; each is a few hundred bytes (a spec key holds no names)."""

    def __init__(self, catalog: Catalog, bandwidths: BandwidthTable) -> None:
        self.catalog = catalog
        self.bandwidths = bandwidths
        # cachetools.Cache evicts in insertion order and reads without reordering, so a read needs no
        # lock (one dict lookup); writes take the lock. This is on every plan's path, once per device.
        self._cache: cachetools.Cache[tuple[object, ...], DeviceSpecs] = cachetools.Cache(self.MAX_ENTRIES)
        self._arrangements: cachetools.Cache[tuple[object, ...], Arrangement] = cachetools.Cache(self.MAX_ARRANGEMENTS)
        self._lock = threading.Lock()

    MAX_ARRANGEMENTS = 1024
    """Arrangements kept, oldest first out, read without a lock like the specs.

    An entry holds its key (at most MAX_ARRANGED_DEVICES spec keys), the arrangement and the few
    facts the roofline keeps on it for its one link: ~3 KB, at most ~9 KB, so ~9 MB in all at worst."""

    MAX_ARRANGED_DEVICES = 16
    """Larger replicas are arranged each time (their keys grow with their work)."""

    def arrangement(
        self,
        devices: Sequence[Accelerator],
        spec_keys: tuple[tuple[object, ...], ...],
        q: Quantization,
        tp: int,
        pp: int,
        link_gbps: float,
    ) -> Arrangement:
        """``Arrangement.of`` the devices' specs, kept across requests for a roofline over ``link_gbps``.

        An arrangement depends only on the devices' ``spec_key``s, q, tp and pp, so every workload
        sized on alike devices shares it. The link is part of the key only because the roofline keeps
        its link's assumption lines on the arrangement (core.memo): one link per entry keeps those few.
        """
        key = (spec_keys, q, tp, pp, link_gbps)
        found = self._arrangements.get(key)
        if found is None:
            found = Arrangement.of([self(d) for d in devices], q, tp, pp)
            if len(spec_keys) <= self.MAX_ARRANGED_DEVICES:
                with self._lock:
                    found = self._arrangements.setdefault(key, found)
        return found

    def __call__(self, device: Accelerator) -> DeviceSpecs:
        """The device's specs (device_id, NUMA node, name and availability do not matter)."""
        key = device.spec_key
        specs = self._cache.get(key)
        if specs is None:
            specs = resolve(device, self.catalog, self.bandwidths)
            with self._lock:
                self._cache[key] = specs
        return specs
