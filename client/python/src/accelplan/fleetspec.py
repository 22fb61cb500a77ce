"""Parsing the CLI's compact fleet and size notation into accelplan.v1 messages.

A fleet is a comma-separated list of devices, each ``[COUNTx]KIND[:MEMORY][@NUMA]``:

    8xcuda:80GiB            eight CUDA GPUs with 80 GiB each
    4xrocm:192GiB@0         four ROCm GPUs on NUMA node 0
    tpu-v5p:4chips          one TPU v5p device with 4 chips (memory from the version)
    gaudi3, cpu:512GiB      a Gaudi 3 (memory from the generation) and a CPU
    8xh100-sxm              eight catalogue accelerators by sku (see `accelplan hardware`)

Links are ``KIND:GBPS`` (``nvswitch:900``, ``infiniband:50``).
"""

from __future__ import annotations

import re

from accelplan.v1 import hardware_pb2 as hw

_T = hw.AcceleratorType
KINDS: dict[str, tuple[int, dict[str, int]]] = {
    "cpu": (_T.ACCELERATOR_TYPE_CPU, {}),
    "cuda": (_T.ACCELERATOR_TYPE_CUDA_GPU, {}),
    "rocm": (_T.ACCELERATOR_TYPE_ROCM_GPU, {}),
    "metal": (_T.ACCELERATOR_TYPE_METAL_GPU, {}),
    "vulkan": (_T.ACCELERATOR_TYPE_VULKAN_GPU, {}),
    "intel-npu": (_T.ACCELERATOR_TYPE_INTEL_NPU, {}),
    "amd-xdna": (_T.ACCELERATOR_TYPE_AMD_XDNA_NPU, {}),
    "apple-npu": (_T.ACCELERATOR_TYPE_APPLE_NPU, {}),
    "tpu": (_T.ACCELERATOR_TYPE_TPU, {}),
    "tpu-v4": (_T.ACCELERATOR_TYPE_TPU, {"tpu_version": hw.TPU_VERSION_V4}),
    "tpu-v5e": (_T.ACCELERATOR_TYPE_TPU, {"tpu_version": hw.TPU_VERSION_V5E}),
    "tpu-v5p": (_T.ACCELERATOR_TYPE_TPU, {"tpu_version": hw.TPU_VERSION_V5P}),
    "gaudi": (_T.ACCELERATOR_TYPE_GAUDI, {}),
    "gaudi2": (_T.ACCELERATOR_TYPE_GAUDI, {"gaudi_generation": hw.GAUDI_GENERATION_GAUDI2}),
    "gaudi3": (_T.ACCELERATOR_TYPE_GAUDI, {"gaudi_generation": hw.GAUDI_GENERATION_GAUDI3}),
    "inferentia": (_T.ACCELERATOR_TYPE_AWS_NEURON, {"neuron_chip_type": hw.NEURON_CHIP_TYPE_INFERENTIA}),
    "trainium": (_T.ACCELERATOR_TYPE_AWS_NEURON, {"neuron_chip_type": hw.NEURON_CHIP_TYPE_TRAINIUM}),
    "qualcomm": (_T.ACCELERATOR_TYPE_QUALCOMM_AI100, {}),
    "oneapi": (_T.ACCELERATOR_TYPE_INTEL_ONEAPI, {}),
    "cerebras": (_T.ACCELERATOR_TYPE_CEREBRAS_WSE, {}),
    "graphcore": (_T.ACCELERATOR_TYPE_GRAPHCORE_IPU, {}),
    "groq": (_T.ACCELERATOR_TYPE_GROQ_LPU, {}),
    "samsung": (_T.ACCELERATOR_TYPE_SAMSUNG_NPU, {}),
    "mediatek": (_T.ACCELERATOR_TYPE_MEDIATEK_APU, {}),
}
LINKS = {
    "nvlink": hw.INTERCONNECT_KIND_NVLINK,
    "nvswitch": hw.INTERCONNECT_KIND_NVSWITCH,
    "xgmi": hw.INTERCONNECT_KIND_XGMI_INFINITY_FABRIC,
    "infiniband": hw.INTERCONNECT_KIND_INFINIBAND,
    "roce": hw.INTERCONNECT_KIND_ROCE,
    "roce-v2": hw.INTERCONNECT_KIND_ROCE_V2,
    "ici": hw.INTERCONNECT_KIND_ICI,
}
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_DEVICE = re.compile(r"^(?:(\d+)\s*x\s*)?([a-z][a-z0-9.-]*)(?::([^@]+))?(?:@(\d+))?$")
MAX_DEVICES = 4096


def parse_size(text: str) -> int:
    """Bytes from ``80GiB``, ``1.5TB``, ``17179869184``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 80GiB, 24GB, 1TiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_count(text: str) -> int:
    """A count such as ``70e9``, ``70B``, ``7000M`` or ``8030261248``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbt]?)\s*", text.lower())
    if not m:
        raise ValueError(f"not a count: {text!r} (use e.g. 70B, 7000M, 8030261248)")
    scale = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}[m.group(2)]
    return int(float(m.group(1)) * scale) if "." in m.group(1) or "e" in m.group(1) else int(m.group(1)) * scale


def parse_fleet(spec: str, links: list[str] | None = None) -> hw.Fleet:
    """A Fleet message from the compact notation (see the module docstring)."""
    fleet = hw.Fleet()
    device_id = 0
    for item in filter(None, (p.strip().lower() for p in spec.split(","))):
        m = _DEVICE.match(item)
        if not m:
            raise ValueError(
                f"bad device {item!r}; use [COUNTx]KIND[:MEMORY][@NUMA], KIND one of "
                f"{', '.join(KINDS)} or a catalogue sku"
            )
        count = int(m.group(1) or 1)
        kind, extra = KINDS.get(m.group(2), (0, {"sku": m.group(2)}))
        memory, chips = 0, 0
        if m.group(3):
            if m.group(3).endswith("chips"):
                chips = int(m.group(3)[:-5])
            else:
                memory = parse_size(m.group(3))
        if device_id + count > MAX_DEVICES:
            raise ValueError(f"at most {MAX_DEVICES} devices")
        for _ in range(count):
            acc = fleet.accelerators.add(type=kind, device_id=device_id, memory_bytes=memory, **extra)
            if chips:
                acc.tpu_chip_count = chips
            if m.group(4) is not None:
                acc.numa_node = int(m.group(4))
            device_id += 1
    for link in links or []:
        kind_name, _, bw = link.lower().partition(":")
        if kind_name not in LINKS:
            raise ValueError(f"bad link {link!r}; use KIND:GBPS with KIND one of {', '.join(LINKS)}")
        fleet.interconnects.add(kind=LINKS[kind_name], bandwidth_gigabytes_per_second=float(bw or 0))
    return fleet
