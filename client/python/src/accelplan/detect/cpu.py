"""The CPU and host memory: ``/proc/cpuinfo``, ``/proc/meminfo``, ``/sys/devices/system/node`` (NUMA).

One CPU device per NUMA node holding memory, with that node's memory; a host
without NUMA information is one device with MemTotal.
"""

from __future__ import annotations

import re

from accelplan.detect.base import Found, Host, ProbeError
from accelplan.v1 import hardware_pb2 as hw

_NODE_MEM = re.compile(r"Node\s+(\d+)\s+MemTotal:\s+(\d+)\s*kB")


def probe(host: Host) -> Found:
    """CPU devices with their memory."""
    meminfo = host.read("/proc/meminfo")
    if meminfo is None:
        raise ProbeError("/proc/meminfo unreadable: no CPU memory detected (not Linux?)")
    total = 0
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    if total == 0:
        raise ProbeError("/proc/meminfo has no MemTotal")
    found = Found()
    model, sockets, cores, threads = _cpuinfo(host.read("/proc/cpuinfo") or "")
    name = model or "CPU"
    nodes = []
    for node_dir in host.glob("/sys/devices/system/node/node*"):
        m = _NODE_MEM.search(host.read(f"/sys/devices/system/node/{node_dir.name}/meminfo") or "")
        if m and int(m.group(2)) > 0:
            nodes.append((int(m.group(1)), int(m.group(2)) * 1024))
    desc = f"{sockets} socket(s), {cores} core(s), {threads} thread(s)" if threads else "topology unknown"
    if len(nodes) > 1:
        for node, mem in nodes:
            acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_CPU, memory_bytes=mem, name=f"{name} (NUMA node {node})")
            acc.numa_node = node
            found.accelerators.append(acc)
        found.notes.append(f"{name}: {desc}; {len(nodes)} NUMA nodes, one CPU device each")
    else:
        acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_CPU, memory_bytes=total, name=name)
        if nodes:
            acc.numa_node = nodes[0][0]
        found.accelerators.append(acc)
        found.notes.append(f"{name}: {desc}")
    found.notes.append(
        "CPU memory bandwidth unknown (DIMM channels are not visible here): the planner's default is used"
    )
    return found


def _cpuinfo(text: str) -> tuple[str, int, int, int]:
    """(model name, sockets, physical cores, logical CPUs) from /proc/cpuinfo."""
    model = ""
    sockets: set[str] = set()
    cores: set[tuple[str, str]] = set()
    threads = 0
    physical = core = ""
    for line in [*text.splitlines(), ""]:
        key, _, value = (p.strip() for p in line.partition(":"))
        if key == "processor":
            threads += 1
        elif key in ("model name", "Model") and not model:
            model = value
        elif key == "physical id":
            physical = value
            sockets.add(value)
        elif key == "core id":
            core = value
        elif not key:
            if physical or core:
                cores.add((physical, core))
            physical = core = ""
    return model, max(1, len(sockets)), len(cores) or threads, threads
