"""Catalogue accelerators as fleet devices, and the precisions a device really runs."""

from __future__ import annotations

from dataclasses import replace

from accelplan_server.core.catalog import AcceleratorModel
from accelplan_server.core.hardware.accelerators import Accelerator, AcceleratorType, Interconnect, InterconnectKind
from accelplan_server.core.quantization import Quantization as Q

_LEVEL_OF_NAME = {"fp32": Q.NONE, "fp16": Q.FLOAT16, "bf16": Q.BFLOAT16, "int8": Q.INT8, "int4": Q.INT4, "fp8": Q.FP8}
_LINK_OF_NAME = {
    "nvlink": InterconnectKind.NVLINK,
    "nvswitch": InterconnectKind.NVSWITCH,
    "xgmi_infinity_fabric": InterconnectKind.XGMI_INFINITY_FABRIC,
    "ici": InterconnectKind.ICI,
    "roce_v2": InterconnectKind.ROCE_V2,
    "infiniband": InterconnectKind.INFINIBAND,
}

AUTO_ORDER = (Q.BFLOAT16, Q.FLOAT16, Q.FP8, Q.INT8, Q.INT4)
"""Precisions tried when the workload leaves it open, widest first (16-bit before 8-bit before 4-bit;
FP32 is never chosen by default). BF16 leads: it is what open models are published in."""


def catalog_device(model: AcceleratorModel, memory_bytes: int = 0, name: str = "") -> Accelerator:
    """One device of a catalogue sku (one chip for a TPU); ``memory_bytes`` overrides the sku's."""
    return Accelerator(
        type=model.type,
        memory_bytes=memory_bytes or model.memory_bytes,
        memory_bandwidth_gbps=model.memory_bandwidth_gbps,
        name=name or model.name,
        sku=model.sku,
        peak_dense_tflops_16bit=model.peak_tflops.get("bf16", model.peak_tflops.get("fp16", 0.0)),
        supports_fp8="fp8" in model.supported_quantizations,
        tpu_chip_count=1 if model.type is AcceleratorType.TPU else 0,
    )


def scaled(device: Accelerator, fraction: float, memory_bytes: int, name: str) -> Accelerator:
    """A slice of a device (a MIG instance): its own memory, bandwidth and peak scaled by ``fraction``."""
    return replace(
        device,
        memory_bytes=memory_bytes,
        memory_bandwidth_gbps=device.memory_bandwidth_gbps * fraction,
        peak_dense_tflops_16bit=device.peak_dense_tflops_16bit * fraction,
        name=name,
    )


def device_links(model: AcceleratorModel | None) -> tuple[Interconnect, ...]:
    """The sku's device-to-device link as a fleet interconnect (none for PCIe-only parts)."""
    if model is None:
        return ()
    kind = _LINK_OF_NAME.get(model.interconnect)
    return (Interconnect(kind, model.interconnect_gbps, model.interconnect),) if kind else ()


def supported_levels(device: Accelerator, model: AcceleratorModel | None) -> tuple[Q, ...]:
    """Levels the device runs, widest first: its kind's, narrowed to what its sku lists when known."""
    levels = device.supported_quantizations
    if model is None or not model.supported_quantizations:
        return levels
    listed = {_LEVEL_OF_NAME[n] for n in model.supported_quantizations if n in _LEVEL_OF_NAME}
    # INT4/INT8 weight-only formats run on any GPU through 16-bit kernels; only the native formats
    # (16-bit floats, FP8) are narrowed by the sku's list.
    weight_only = {Q.INT4, Q.INT8} if device.type in (AcceleratorType.CUDA_GPU, AcceleratorType.ROCM_GPU) else set()
    return tuple(q for q in levels if q in listed or q in weight_only)
