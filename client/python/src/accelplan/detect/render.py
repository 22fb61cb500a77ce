"""A detection as a table, as Kubernetes node labels, and as an NFD local feature file."""

from __future__ import annotations

import re
from collections import Counter

from accelplan.detect.runner import Detection
from accelplan.v1 import hardware_pb2 as hw

PREFIX = "accelplan.dev/"
# The interconnect label's values: accelplan.v1.InterconnectKind names, lower case, without the prefix.
LINK_NAMES = {
    k: str(hw.InterconnectKind.Name(k)).removeprefix("INTERCONNECT_KIND_").lower()
    for k in hw.InterconnectKind.values()
    if k != hw.INTERCONNECT_KIND_UNSPECIFIED
}


def _type(acc: hw.Accelerator) -> str:
    return str(hw.AcceleratorType.Name(acc.type)).removeprefix("ACCELERATOR_TYPE_")


def table(d: Detection) -> str:
    """Readable text: the host, one row per device, the links, and the notes."""
    rows = [("#", "TYPE", "NAME", "SKU", "MEMORY", "NUMA")]
    for a in d.fleet.accelerators:
        mem = f"{a.memory_bytes / 2**30:,.1f} GiB" if a.memory_bytes else "from sku"
        numa = str(a.numa_node) if a.HasField("numa_node") else "-"
        rows.append((str(a.device_id), _type(a), a.name, a.sku or "-", mem, numa))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"host: {d.hostname}", ""]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if d.fleet.interconnects:
        lines.append("")
        for link in d.fleet.interconnects:
            bw = (
                f"{link.bandwidth_gigabytes_per_second:g} GB/s"
                if link.bandwidth_gigabytes_per_second
                else "GB/s unknown"
            )
            lines.append(f"link: {LINK_NAMES.get(link.kind, '?')} {bw} ({link.name})")
    if d.notes:
        lines.append("")
        lines += [f"note: {n}" for n in d.notes]
    return "\n".join(lines)


def _value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    v = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip())[:63]
    return v.strip("-._")


def primary(d: Detection) -> list[hw.Accelerator]:
    """The devices a node is labelled for: the most numerous non-CPU kind (by type and name), else the CPUs."""
    accs = list(d.fleet.accelerators)
    non_cpu = [a for a in accs if a.type != hw.ACCELERATOR_TYPE_CPU]
    pool = non_cpu or accs
    if not pool:
        return []
    key, _ = Counter((a.type, a.name) for a in pool).most_common(1)[0]
    if not non_cpu:
        return pool  # every CPU device (one per NUMA node) is the node's compute
    return [a for a in pool if (a.type, a.name) == key]


def labels(d: Detection) -> dict[str, str]:
    """Node labels: GFD's nvidia.com/gpu.* for NVIDIA, accelplan.dev/accelerator.* for every vendor.

    accelerator.sku is set only for a catalogue sku (the SchedulerService looks it up); count,
    memory-mib (per device) and interconnect are always set.
    """
    devices = primary(d)
    if not devices:
        return {}
    first = devices[0]
    mib = min(a.memory_bytes for a in devices) // 2**20
    out: dict[str, str] = {}
    if first.type == hw.ACCELERATOR_TYPE_CUDA_GPU:
        out["nvidia.com/gpu.product"] = _value(first.name)
        out["nvidia.com/gpu.count"] = str(len(devices))
        out["nvidia.com/gpu.memory"] = str(mib)
    if first.sku:
        out[PREFIX + "accelerator.sku"] = _value(first.sku)
    out[PREFIX + "accelerator.count"] = str(len(devices))
    if mib:
        out[PREFIX + "accelerator.memory-mib"] = str(mib)
    kinds = [LINK_NAMES.get(link.kind, "") for link in d.fleet.interconnects]
    out[PREFIX + "accelerator.interconnect"] = next((k for k in kinds if k), "none")
    return out


def labels_text(d: Detection) -> str:
    """``name=value`` lines, sorted."""
    return "\n".join(f"{k}={v}" for k, v in sorted(labels(d).items()))


def nfd_features(d: Detection) -> str:
    """An NFD local feature file (features.d): a comment header, then ``name=value`` lines."""
    head = (
        f"# Written by `accelplan detect --nfd-features` on {d.hostname}.\n"
        "# NFD's local feature source publishes each line as a node label.\n"
    )
    return head + labels_text(d) + "\n"
