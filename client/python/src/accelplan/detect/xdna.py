"""AMD XDNA NPUs (Ryzen AI): the amdxdna driver under ``/sys/class/accel``."""

from __future__ import annotations

from accelplan.detect.base import Found, Host, ProbeError
from accelplan.detect.intel import driver, host_memory
from accelplan.v1 import hardware_pb2 as hw


def probe(host: Host) -> Found:
    """XDNA NPUs from sysfs."""
    found = Found()
    for accel in host.glob("/sys/class/accel/accel*"):
        base = f"/sys/class/accel/{accel.name}/device"
        if driver(host, base) != "amdxdna":
            continue
        name = f"AMD XDNA NPU {(host.read(f'{base}/device') or '').strip()}".strip()
        found.accelerators.append(
            hw.Accelerator(type=hw.ACCELERATOR_TYPE_AMD_XDNA_NPU, memory_bytes=host_memory(host), name=name)
        )
        found.notes.append(f"{name}: shares host memory; bandwidth and TOPS unknown")
    if not found.accelerators:
        raise ProbeError("no AMD XDNA NPU (amdxdna in /sys/class/accel)")
    return found
