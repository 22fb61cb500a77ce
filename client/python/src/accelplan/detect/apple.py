"""Apple silicon GPUs: ``system_profiler SPDisplaysDataType -json`` and ``sysctl -n hw.memsize``.

The GPU shares the machine's unified memory, so its memory is hw.memsize.
"""

from __future__ import annotations

import json

from accelplan.detect import skus
from accelplan.detect.base import Found, Host, ProbeError
from accelplan.v1 import hardware_pb2 as hw


def probe(host: Host) -> Found:
    """The Apple GPU, with unified memory."""
    if host.which("system_profiler") is None:
        raise ProbeError("system_profiler not found on PATH: not macOS, no Apple GPU detected")
    found = Found()
    try:
        data = json.loads(host.run(["system_profiler", "SPDisplaysDataType", "-json"]))
    except json.JSONDecodeError as e:
        raise ProbeError(f"system_profiler: not JSON ({e})") from None
    gpus = [g for g in data.get("SPDisplaysDataType", []) if "apple" in str(g.get("spdisplays_vendor", "")).lower()]
    if not gpus:
        found.notes.append("no Apple-silicon GPU in system_profiler's list")
        return found
    memsize = host.run(["sysctl", "-n", "hw.memsize"]).strip()
    if not memsize.isdigit():
        raise ProbeError(f"sysctl hw.memsize: not a byte count: {memsize!r}")
    for g in gpus:
        model = str(g.get("sppci_model") or g.get("_name") or "Apple GPU")
        cores = str(g.get("sppci_cores", "")).strip()
        name = f"{model} ({cores}-core GPU)" if cores.isdigit() else model
        acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_METAL_GPU, memory_bytes=int(memsize), name=name)
        m = skus.match(name)
        if m is not None:
            acc.sku = m.sku
        else:
            found.notes.append(f"{name}: no catalogue sku; memory bandwidth and FLOPS unknown")
        found.accelerators.append(acc)
    found.notes.append("unified memory: the GPU's memory is the whole of hw.memsize, shared with the CPU")
    return found
