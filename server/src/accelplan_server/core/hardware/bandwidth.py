"""Memory bandwidth per device: the caller's figure, else a catalogue stand-in for its kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from accelplan_server.core.hardware.accelerators import (
    Accelerator,
    AcceleratorType,
    GaudiGeneration,
    NeuronChipType,
    TpuVersion,
)

if TYPE_CHECKING:
    from accelplan_server.core.catalog import Catalog

# Catalogue sku whose bandwidth stands in for a device of each kind that arrives
# without one. Kinds absent here have no default: their speed stays unknown.
DEFAULT_SKU: dict[tuple[AcceleratorType, int], str] = {
    (AcceleratorType.CPU, 0): "cpu-ddr5-2ch",
    (AcceleratorType.CUDA_GPU, 0): "a100-80gb-sxm",
    (AcceleratorType.ROCM_GPU, 0): "mi300x",
    (AcceleratorType.METAL_GPU, 0): "apple-m2-max",
    (AcceleratorType.TPU, TpuVersion.UNSPECIFIED): "tpu-v4",
    (AcceleratorType.TPU, TpuVersion.V4): "tpu-v4",
    (AcceleratorType.TPU, TpuVersion.V5E): "tpu-v5e",
    (AcceleratorType.TPU, TpuVersion.V5P): "tpu-v5p",
    (AcceleratorType.GAUDI, GaudiGeneration.UNSPECIFIED): "gaudi2",
    (AcceleratorType.GAUDI, GaudiGeneration.GAUDI2): "gaudi2",
    (AcceleratorType.GAUDI, GaudiGeneration.GAUDI3): "gaudi3",
    (AcceleratorType.AWS_NEURON, NeuronChipType.UNSPECIFIED): "inferentia2",
    (AcceleratorType.AWS_NEURON, NeuronChipType.INFERENTIA): "inferentia2",
    (AcceleratorType.AWS_NEURON, NeuronChipType.TRAINIUM): "trainium1",
}


def _variant(device: Accelerator) -> int:
    if device.type is AcceleratorType.TPU:
        return int(device.tpu_version)
    if device.type is AcceleratorType.GAUDI:
        return int(device.gaudi_generation)
    if device.type is AcceleratorType.AWS_NEURON:
        return int(device.neuron_chip_type)
    return 0


@dataclass(frozen=True)
class DefaultBandwidth:
    """A per-kind default: the stand-in sku, its name and its bandwidth per chip in GB/s."""

    sku: str
    name: str
    gbps: float


class BandwidthTable:
    """Memory bandwidth per device: the caller's figure, else the kind's catalogue default."""

    def __init__(self, defaults: dict[tuple[AcceleratorType, int], DefaultBandwidth]) -> None:
        self._defaults = defaults

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> BandwidthTable:
        """Resolve DEFAULT_SKU against the hardware catalogue (skus it lacks are skipped)."""
        defaults = {}
        for key, sku in DEFAULT_SKU.items():
            model = catalog.accelerator(sku)
            if model is not None and model.memory_bandwidth_gbps > 0:
                defaults[key] = DefaultBandwidth(model.sku, model.name, model.memory_bandwidth_gbps)
        return cls(defaults)

    def default_for(self, device: Accelerator) -> DefaultBandwidth | None:
        """The stand-in for a device of this kind, if there is one."""
        return self._defaults.get((device.type, _variant(device))) or self._defaults.get((device.type, 0))

    def bandwidth_gbps(self, device: Accelerator) -> tuple[float, bool]:
        """(GB/s, whether it is a default); 0 when unknown. Multi-chip TPU defaults scale with chips."""
        if device.memory_bandwidth_gbps > 0:
            return device.memory_bandwidth_gbps, False
        default = self.default_for(device)
        if default is None:
            return 0.0, False
        return default.gbps * device.chips, True
