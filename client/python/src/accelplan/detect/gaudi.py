"""Intel Gaudi accelerators: ``hl-smi -Q index,name,memory.total,bus_id --format=csv,noheader``.

hl-smi's query mode follows nvidia-smi's (docs.habana.ai, System Management
Interface Tool): one CSV row per device, memory with its unit (``98304 MiB``).
"""

from __future__ import annotations

import csv

from accelplan.detect import skus
from accelplan.detect.base import Found, Host, ProbeError, memory_from_text, pci_numa_node
from accelplan.v1 import hardware_pb2 as hw

QUERY = "index,name,memory.total,bus_id"
_GENERATION = {"gaudi2": hw.GAUDI_GENERATION_GAUDI2, "gaudi3": hw.GAUDI_GENERATION_GAUDI3}


def probe(host: Host) -> Found:
    """Gaudi devices and their on-chip RoCE v2 scale-up links."""
    if host.which("hl-smi") is None:
        raise ProbeError("hl-smi not found on PATH: no Intel Gaudi detected")
    found = Found()
    rows = parse_query(host.run(["hl-smi", "-Q", QUERY, "--format=csv,noheader"]))
    for name, memory, bus in rows:
        acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_GAUDI, memory_bytes=memory, name=name)
        m = skus.match(name)
        if m is not None:
            acc.sku = m.sku
            acc.gaudi_generation = _GENERATION.get(m.sku, hw.GAUDI_GENERATION_UNSPECIFIED)
        else:
            found.notes.append(f"{name}: no catalogue sku; memory bandwidth and FLOPS unknown")
        node = pci_numa_node(host, bus) if bus else None
        if node is not None:
            acc.numa_node = node
        found.accelerators.append(acc)
    if len(rows) > 1:
        m = skus.match(rows[0][0])
        gbps = m.link_gbps if m is not None else None
        found.interconnects.append(
            hw.Interconnect(
                kind=hw.INTERCONNECT_KIND_ROCE_V2,
                bandwidth_gigabytes_per_second=gbps or 0.0,
                name="Gaudi integrated RoCE v2 ports",
            )
        )
    return found


def parse_query(out: str) -> list[tuple[str, int, str]]:
    """(name, memory bytes, PCI bus) per device from hl-smi's CSV query."""
    rows = []
    for row in csv.reader(line for line in out.splitlines() if line.strip()):
        cells = [c.strip() for c in row]
        if len(cells) < 3:
            raise ProbeError(f"hl-smi: unexpected row {row!r}")
        rows.append((cells[1], memory_from_text(cells[2]), cells[3] if len(cells) > 3 else ""))
    return rows
