"""Intel GPUs (i915/xe under ``/sys/class/drm``) and Intel NPUs (intel_vpu under ``/sys/class/accel``)."""

from __future__ import annotations

import os

from accelplan.detect.base import Found, Host, ProbeError
from accelplan.v1 import hardware_pb2 as hw

INTEL_PCI_VENDOR = "0x8086"


def driver(host: Host, device_dir: str) -> str:
    """The kernel driver bound to a sysfs device (the name its ``driver`` link points at)."""
    link = host.file(f"{device_dir}/driver")
    try:
        return os.path.basename(os.readlink(link))
    except OSError:
        return (host.read(f"{device_dir}/driver_name") or "").strip()


def host_memory(host: Host) -> int:
    """MemTotal from /proc/meminfo in bytes, 0 when unreadable."""
    for line in (host.read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def probe(host: Host) -> Found:
    """Intel GPUs and NPUs from sysfs."""
    found = Found()
    for card in host.glob("/sys/class/drm/card*"):
        if "-" in card.name:  # connectors such as card0-DP-1
            continue
        base = f"/sys/class/drm/{card.name}/device"
        if (host.read(f"{base}/vendor") or "").strip().lower() != INTEL_PCI_VENDOR:
            continue
        drv = driver(host, base)
        if drv not in ("i915", "xe"):
            continue
        pci_id = (host.read(f"{base}/device") or "").strip()
        vram = 0
        for f in (f"{base}/tile0/vram0/size", f"/sys/class/drm/{card.name}/lmem_total_bytes"):
            text = (host.read(f) or "").strip()
            if text:
                vram = int(text, 0)
                break
        name = f"Intel GPU {pci_id} ({drv})"
        if vram == 0:
            vram = host_memory(host)
            found.notes.append(f"{name}: integrated, shares host memory; bandwidth and FLOPS unknown")
        else:
            found.notes.append(f"{name}: no catalogue sku; memory bandwidth and FLOPS unknown")
        found.accelerators.append(hw.Accelerator(type=hw.ACCELERATOR_TYPE_INTEL_ONEAPI, memory_bytes=vram, name=name))
    for accel in host.glob("/sys/class/accel/accel*"):
        base = f"/sys/class/accel/{accel.name}/device"
        if driver(host, base) != "intel_vpu":
            continue
        name = f"Intel NPU {(host.read(f'{base}/device') or '').strip()}".strip()
        found.accelerators.append(
            hw.Accelerator(type=hw.ACCELERATOR_TYPE_INTEL_NPU, memory_bytes=host_memory(host), name=name)
        )
        found.notes.append(f"{name}: shares host memory; bandwidth and TOPS unknown")
    if not found.accelerators:
        raise ProbeError("no Intel GPU (i915/xe in /sys/class/drm) or NPU (intel_vpu in /sys/class/accel)")
    return found
