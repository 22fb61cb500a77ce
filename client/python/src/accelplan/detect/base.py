"""What every detection backend shares: the machine it looks at and what it found.

A backend is a function ``probe(host: Host) -> Found``. It reads files under
``host.root`` (``/`` normally, a fake tree in tests) and runs tools found on
``host.path``, each bounded by ``host.deadline``. It never raises for a missing
tool or file: it says so in ``Found.warnings``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from accelplan.v1 import hardware_pb2 as hw


class ProbeError(Exception):
    """A tool or file a backend needs could not be read; the message says which and why."""


@dataclass
class Found:
    """What one backend found: devices, links between them, and what it could not read."""

    accelerators: list[hw.Accelerator] = field(default_factory=list)
    interconnects: list[hw.Interconnect] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Host:
    """The machine a backend looks at: a file root, a tool PATH, environment and a deadline."""

    root: Path = Path("/")
    path: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    deadline: float = 0.0  # time.monotonic() value after which nothing more is started

    def file(self, path: str) -> Path:
        """An absolute machine path placed under the root."""
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str | None:
        """The text of a file under the root, or None when it is absent or unreadable."""
        try:
            return self.file(path).read_text(errors="replace")
        except OSError:
            return None

    def glob(self, pattern: str) -> list[Path]:
        """Paths under the root matching an absolute glob pattern, sorted naturally."""
        found = list(self.root.glob(pattern.lstrip("/")))
        return sorted(found, key=_natural)

    def which(self, tool: str) -> str | None:
        """The tool's path on the host's PATH, or None."""
        return shutil.which(tool, path=self.path)

    def run(self, argv: Sequence[str]) -> str:
        """The tool's stdout; ProbeError when it is missing, fails or outlives the deadline.

        The tool runs in its own process group, so a hung tool and anything it
        started are killed together when the deadline passes.
        """
        exe = self.which(argv[0])
        if exe is None:
            raise ProbeError(f"{argv[0]} not found on PATH")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProbeError(f"{argv[0]}: no time left before the probe timeout")
        proc = subprocess.Popen(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            env={**os.environ, **self.env, "PATH": self.path},
        )
        try:
            out, err = proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise ProbeError(f"{' '.join(argv)} did not answer within the probe timeout") from None
        if proc.returncode != 0:
            tail = (err or out).strip().splitlines()[-1:] or ["no output"]
            raise ProbeError(f"{' '.join(argv)} exited with {proc.returncode}: {tail[0][:200]}")
        return out


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):  # a grandchild left its group holding the pipe
        proc.communicate(timeout=1)


def _natural(p: Path) -> tuple[object, ...]:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p)))


def pci_numa_node(host: Host, bus_id: str) -> int | None:
    """The NUMA node of a PCI device from sysfs (``/sys/bus/pci/devices/BDF/numa_node``); None if unknown."""
    bdf = normalize_bdf(bus_id)
    text = host.read(f"/sys/bus/pci/devices/{bdf}/numa_node")
    if text is None:
        return None
    try:
        node = int(text.strip())
    except ValueError:
        return None
    return node if node >= 0 else None  # -1: the platform does not say


def normalize_bdf(bus_id: str) -> str:
    """``00000000:1B:00.0`` or ``1b:00.0`` as sysfs names it: ``0000:1b:00.0``."""
    b = bus_id.strip().lower()
    parts = b.split(":")
    if len(parts) == 2:
        parts = ["0000", *parts]
    parts[0] = parts[0][-4:].rjust(4, "0")
    return ":".join(parts)


def memory_from_text(text: str) -> int:
    """Bytes from tool text such as ``81559 MiB``, ``96 GB``, ``98304`` (MiB assumed when bare)."""
    import re

    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ProbeError(f"not a memory size: {text!r}")
    unit = (m.group(2) or "MiB").lower()
    scale = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9}
    scale["tb"] = 10**12
    return int(float(m.group(1)) * scale[unit])
