"""Google Cloud TPU chips: ``/dev/accel*`` and ``/sys/class/accel`` (vendor 0x1ae0), and TPU VM variables.

The generation comes from ``TPU_ACCELERATOR_TYPE`` (``v5litepod-8``, ``v4-8``,
``v5p-8``, ``v6e-8``, set on TPU VMs and GKE TPU nodes) or, failing that, from
the chip's PCI device id as Google's tpu-info tool maps them.
"""

from __future__ import annotations

import re

from accelplan.detect import skus
from accelplan.detect.base import Found, Host, ProbeError
from accelplan.v1 import hardware_pb2 as hw

GOOGLE_PCI_VENDOR = "0x1ae0"
# PCI device id -> generation (google/cloud-accelerator-diagnostics, tpu_info/device.py)
PCI_DEVICES = {"0x005e": "v4", "0x0063": "v5e", "0x0062": "v5p", "0x006f": "v6e"}
_TYPE = re.compile(r"^(v4|v5p|v5e|v5litepod|v6e)-(\d+)$")
_VERSION = {"v4": hw.TPU_VERSION_V4, "v5e": hw.TPU_VERSION_V5E, "v5p": hw.TPU_VERSION_V5P}


def probe(host: Host) -> Found:
    """TPU chips on this host."""
    found = Found()
    chips: list[tuple[str, int | None]] = []  # (generation from the PCI id or "", NUMA node)
    for dev in host.glob("/sys/class/accel/accel*"):
        vendor = (host.read(f"/sys/class/accel/{dev.name}/device/vendor") or "").strip().lower()
        if vendor != GOOGLE_PCI_VENDOR:
            continue
        device = (host.read(f"/sys/class/accel/{dev.name}/device/device") or "").strip().lower()
        node = (host.read(f"/sys/class/accel/{dev.name}/device/numa_node") or "").strip()
        chips.append((PCI_DEVICES.get(device, ""), int(node) if node.isdigit() else None))
    dev_nodes = host.glob("/dev/accel*")
    accel_type = host.env.get("TPU_ACCELERATOR_TYPE", "").strip().lower()
    if not chips and not dev_nodes and not accel_type:
        raise ProbeError("no TPU: no Google device under /sys/class/accel, no /dev/accel*, no TPU_ACCELERATOR_TYPE")
    generation = ""
    if t := _TYPE.match(accel_type):
        generation = "v5e" if t.group(1) == "v5litepod" else t.group(1)
    elif accel_type:
        found.warnings.append(f"TPU_ACCELERATOR_TYPE={accel_type!r} not understood")
    if not generation and chips and chips[0][0]:
        generation = chips[0][0]
    if not chips:
        chips = [("", None)] * len(dev_nodes)
        if not chips:
            found.warnings.append(f"TPU_ACCELERATOR_TYPE={accel_type} is set but no chip is visible (/dev/accel*)")
            return found
        found.notes.append(f"{len(chips)} /dev/accel* nodes without sysfs details: each taken as one TPU chip")
    name = f"tpu-{generation}" if generation else "tpu"
    sku = skus.match(name)
    for _, numa in chips:
        acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_TPU, tpu_chip_count=1, name=f"Google Cloud TPU {generation}")
        acc.memory_bytes = sku.memory_bytes if sku is not None else 0
        acc.tpu_version = _VERSION.get(generation, hw.TPU_VERSION_UNSPECIFIED)
        if sku is not None:
            acc.sku = sku.sku
        if numa is not None:
            acc.numa_node = numa
        found.accelerators.append(acc)
    if sku is None:
        found.warnings.append(f"TPU generation {generation or 'unknown'}: no catalogue sku; memory unknown")
    if len(chips) > 1:
        gbps = sku.link_gbps if sku is not None else None
        found.interconnects.append(
            hw.Interconnect(kind=hw.INTERCONNECT_KIND_ICI, bandwidth_gigabytes_per_second=gbps or 0.0, name="TPU ICI")
        )
    return found
