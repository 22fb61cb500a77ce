"""Parsing the CLI's compact fleet and size notation into accelplan.v1 messages.

A fleet is a comma-separated list of devices, each ``[COUNTx]KIND[:MEMORY][@NUMA]``:

    8xcuda:80GiB            eight CUDA GPUs with 80 GiB each
    4xrocm:192GiB@0         four ROCm GPUs on NUMA node 0
    tpu-v5p:4chips          one TPU v5p device with 4 chips (memory from the version)
    gaudi3, cpu:512GiB      a Gaudi 3 (memory from the generation) and a CPU
    8xh100-sxm              eight catalogue accelerators by sku (see `accelplan hardware`)

Every size needs its unit (``cuda:80`` is refused: 80 what?), and a TPU's
``:4`` must say ``4chips``. Links are ``KIND[:BANDWIDTH]``: ``nvlink:900``
(GB/s) or ``nvlink:900GB/s``; a bare ``nvlink`` takes the catalogue's figure
for the fleet's sku (the CLI looks it up and says so).
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


SIZE_FORMS = "80GiB, 24GB, 1.5TiB or 17179869184B"
COUNT_FORMS = "7B, 7000M, 7e9 or an exact count such as 8030261248"
MIN_BARE_COUNT = 10**6
"""A bare count below this is ambiguous (7 parameters, or 7 billion?) and refused."""


def parse_size(text: str, what: str = "size") -> int:
    """Bytes from ``80GiB``, ``1.5TB`` or ``17179869184B``; a bare number is refused (80 what?)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if m and not m.group(2):
        raise ValueError(f"{what} {text.strip()!r} has no unit: {m.group(1)} what? Say e.g. {SIZE_FORMS}")
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a {what}: {text!r} (use e.g. {SIZE_FORMS})")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_count(text: str) -> int:
    """A count such as ``70e9``, ``70B``, ``7000M`` or ``8030261248``; a small bare number is refused."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbt]?)\s*", text.lower())
    if not m:
        raise ValueError(f"not a count: {text!r} (use e.g. {COUNT_FORMS})")
    scale = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}[m.group(2)]
    number = m.group(1)
    value = int(float(number) * scale) if "." in number or "e" in number else int(number) * scale
    if not m.group(2) and "e" not in number and 0 < value < MIN_BARE_COUNT:
        raise ValueError(f"{number} parameters? Say {number}B (billions) or {number}M (millions); forms: {COUNT_FORMS}")
    return value


_BANDWIDTH = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(gb/s|gbps|gb)?\s*$")


def parse_link(text: str) -> tuple[hw.InterconnectKind.ValueType, float]:
    """(interconnect kind, GB/s) from ``nvlink:900``, ``nvlink:900GB/s`` or ``nvlink`` (0: not given)."""
    kind_name, _, bandwidth = text.strip().lower().partition(":")
    if kind_name not in LINKS:
        raise ValueError(
            f"bad link {text!r}; use KIND[:GB/S] (nvlink:900 or nvlink:900GB/s) with KIND one of {', '.join(LINKS)}"
        )
    if not bandwidth:
        return LINKS[kind_name], 0.0
    m = _BANDWIDTH.match(bandwidth)
    if not m:
        raise ValueError(
            f"bad link bandwidth {bandwidth!r} in {text!r}; give GB/s: {kind_name}:900 or {kind_name}:900GB/s"
        )
    return LINKS[kind_name], float(m.group(1))


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
            amount = m.group(3).strip()
            if amount.endswith("chips") and amount[:-5].isdigit():
                chips = int(amount[:-5])
            elif re.fullmatch(r"[0-9]*\.?[0-9]+", amount):
                forms = f"{m.group(2)}:{amount}GiB or {m.group(2)}:{amount}GB"
                if kind == _T.ACCELERATOR_TYPE_TPU:
                    forms = f"{m.group(2)}:{amount}chips (chips) or {forms} (memory)"
                raise ValueError(f"{item!r}: {amount} what? Say {forms}")
            else:
                memory = parse_size(amount, "memory")
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
        kind, bandwidth = parse_link(link)
        fleet.interconnects.add(kind=kind, bandwidth_gigabytes_per_second=bandwidth)
    return fleet
