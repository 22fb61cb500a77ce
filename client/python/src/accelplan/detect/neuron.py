"""AWS Neuron devices (Inferentia, Trainium): ``neuron-ls --json-output``.

neuron-ls lists each device's NeuronCore count, memory and connected devices
(AWS Neuron docs, Neuron LS User Guide). The chip kind comes from the EC2
instance family, which DMI reports as the product name (``trn1.32xlarge``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from accelplan.detect import skus
from accelplan.detect.base import Found, Host, ProbeError, memory_from_text, pci_numa_node
from accelplan.v1 import hardware_pb2 as hw

# EC2 instance family -> (chip name matched against skus.json, chip kind)
FAMILIES = {
    "inf1": ("AWS Inferentia", hw.NEURON_CHIP_TYPE_INFERENTIA),
    "inf2": ("AWS Inferentia2", hw.NEURON_CHIP_TYPE_INFERENTIA),
    "trn1": ("AWS Trainium", hw.NEURON_CHIP_TYPE_TRAINIUM),
    "trn1n": ("AWS Trainium", hw.NEURON_CHIP_TYPE_TRAINIUM),
    "trn2": ("AWS Trainium2", hw.NEURON_CHIP_TYPE_TRAINIUM),
    "trn2n": ("AWS Trainium2", hw.NEURON_CHIP_TYPE_TRAINIUM),
}


def probe(host: Host) -> Found:
    """Neuron devices from neuron-ls."""
    if host.which("neuron-ls") is None:
        raise ProbeError("neuron-ls not found on PATH: no AWS Neuron device detected")
    found = Found()
    data = _load(host.run(["neuron-ls", "--json-output"]))
    devices = data if isinstance(data, list) else data.get("neuron_devices", [])
    instance = _instance_type(host, data)
    family = instance.split(".")[0] if instance else ""
    chip, kind = FAMILIES.get(family, ("AWS Neuron device", hw.NEURON_CHIP_TYPE_UNSPECIFIED))
    if not instance:
        found.notes.append("EC2 instance type unknown (DMI product_name unreadable): chip kind unknown")
    for d in devices:
        acc = hw.Accelerator(
            type=hw.ACCELERATOR_TYPE_AWS_NEURON,
            memory_bytes=_memory(d),
            name=chip,
            neuron_chip_type=kind,
            neuron_core_count=int(d.get("nc_count", 0)),
        )
        m = skus.match(chip)
        if m is not None:
            acc.sku = m.sku
        bdf = str(d.get("bdf", ""))
        node = pci_numa_node(host, bdf) if bdf else None
        if node is not None:
            acc.numa_node = node
        found.accelerators.append(acc)
    if len(devices) > 1 and any(d.get("connected_to") for d in devices):
        found.notes.append("NeuronLink connects the devices; accelplan has no link kind for it, so it is left out")
    if devices and skus.match(chip) is None:
        found.notes.append(f"{chip}: no catalogue sku; memory bandwidth and FLOPS unknown")
    return found


def _load(out: str) -> Any:
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        raise ProbeError(f"neuron-ls --json-output: not JSON ({e})") from None


def _memory(d: dict[str, Any]) -> int:
    size = d.get("memory_size", 0)
    if isinstance(size, int | float):
        return int(size)
    return memory_from_text(str(size))


def _instance_type(host: Host, data: Any) -> str:
    if isinstance(data, dict) and data.get("instance_type"):
        return str(data["instance_type"])
    text = (host.read("/sys/devices/virtual/dmi/id/product_name") or "").strip()
    return text if re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+", text) else ""
