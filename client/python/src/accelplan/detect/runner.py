"""Run every backend in parallel, each within the probe timeout, and merge what they found."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from accelplan.detect import amd, apple, cpu, gaudi, intel, neuron, nvidia, tpu, xdna
from accelplan.detect.base import Found, Host, ProbeError
from accelplan.v1 import hardware_pb2 as hw

Probe = Callable[[Host], Found]
BACKENDS: dict[str, Probe] = {
    "nvidia": nvidia.probe,
    "amd": amd.probe,
    "gaudi": gaudi.probe,
    "neuron": neuron.probe,
    "tpu": tpu.probe,
    "apple": apple.probe,
    "intel": intel.probe,
    "xdna": xdna.probe,
    "cpu": cpu.probe,
}
DEFAULT_TIMEOUT_S = 5.0


@dataclass
class Detection:
    """The local machine: its hostname, its devices and links as a Fleet, and what could not be read."""

    hostname: str
    fleet: hw.Fleet
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def detect(
    root: str | Path = "/",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    backends: Sequence[str] | None = None,
) -> Detection:
    """Probe the machine. Every backend runs at once; one that outlives ``timeout_s`` is a warning."""
    env = dict(os.environ if env is None else env)
    names = list(backends or BACKENDS)
    results: dict[str, Found] = {}
    lock = threading.Lock()
    start = time.monotonic()
    host = Host(Path(root), env.get("PATH", os.defpath) if path is None else path, env, start + timeout_s)

    def work(name: str) -> None:
        try:
            found = BACKENDS[name](host)
        except ProbeError as e:
            found = Found(warnings=[str(e)])
        except Exception as e:  # a backend bug or an output format we have not seen: say so, go on
            found = Found(warnings=[f"failed ({type(e).__name__}: {e})"])
        with lock:
            results[name] = found

    threads = [threading.Thread(target=work, args=(n,), name=f"detect-{n}", daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, start + timeout_s + 0.5 - time.monotonic()))
    fleet = hw.Fleet()
    warnings: list[str] = []
    notes: list[str] = []
    with lock:
        done = dict(results)
    for name in names:
        found = done.get(name)
        if found is None:
            warnings.append(f"{name}: no answer within {timeout_s:g} s; skipped")
            continue
        warnings += [f"{name}: {w}" for w in found.warnings]
        notes += [f"{name}: {n}" for n in found.notes]
        for acc in found.accelerators:
            acc.device_id = len(fleet.accelerators)
            fleet.accelerators.append(acc)
        fleet.interconnects.extend(found.interconnects)
    hostname = (host.read("/etc/hostname") or "").strip() if Path(root) != Path("/") else ""
    return Detection(hostname or socket.gethostname(), fleet, warnings, notes)
