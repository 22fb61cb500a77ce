"""NVIDIA GPUs: NVML through nvidia-ml-py when installed, else ``nvidia-smi``.

NVML gives name, memory, UUID, PCI bus, NUMA node, compute capability, NVLink
links and their peers, and MIG instances. Without it, ``nvidia-smi
--query-gpu=... --format=csv`` gives the devices, ``nvidia-smi -L`` the MIG
instances and ``nvidia-smi topo -m`` the NVLink matrix.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from accelplan.detect import skus
from accelplan.detect.base import Found, Host, ProbeError, pci_numa_node
from accelplan.v1 import hardware_pb2 as hw

QUERY = "index,name,uuid,memory.total,pci.bus_id,compute_cap,mig.mode.current"
_MIG_LINE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*([^)]+)\)")
_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.+?)\s*\(UUID:\s*([^)]+)\)")
_PROFILE_GB = re.compile(r"\d+g\.(\d+)gb")


@dataclass
class Gpu:
    """One GPU (or MIG instance) as read from NVML or nvidia-smi."""

    index: int
    name: str
    memory_bytes: int
    uuid: str = ""
    bus_id: str = ""
    compute_capability: str = ""
    numa_node: int | None = None
    mig: bool = False
    mig_instances: list[Gpu] = field(default_factory=list)
    nvlink_peers: set[str] = field(default_factory=set)  # remote PCI bus ids of active links
    nvlink_count: int = 0
    nvswitch: bool = False


def probe(host: Host) -> Found:
    """NVIDIA devices via NVML, falling back to nvidia-smi."""
    found = Found()
    try:
        gpus = _from_nvml()
        found.notes.append("read through NVML (nvidia-ml-py)")
    except ProbeError as nvml_error:
        if host.which("nvidia-smi") is None:
            raise ProbeError(f"{nvml_error}; nvidia-smi not found on PATH: no NVIDIA GPU detected") from None
        gpus = _from_smi(host, found)
        found.notes.append(f"read through nvidia-smi ({nvml_error})")
    for g in gpus:
        if g.numa_node is None and g.bus_id:
            g.numa_node = pci_numa_node(host, g.bus_id)
    _emit(gpus, found)
    return found


def _emit(gpus: list[Gpu], found: Found) -> None:
    whole = [g for g in gpus if not g.mig]
    for g in gpus:
        found.notes.append(_details(g))
        devices = g.mig_instances if g.mig and g.mig_instances else [g]
        if g.mig and not g.mig_instances:
            found.warnings.append(f"GPU {g.index} ({g.name}) has MIG enabled but no MIG instance: it offers nothing")
            continue
        for d in devices:
            acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=d.memory_bytes, name=d.name)
            if d.numa_node is not None:
                acc.numa_node = d.numa_node
            m = None if g.mig else skus.match(d.name)
            if m is not None:
                acc.sku = m.sku
            elif g.mig:
                found.notes.append(
                    f"{d.name}: a MIG slice gets a share of the GPU's bandwidth and compute; left unknown"
                )
            else:
                found.notes.append(f"{d.name}: no catalogue sku; memory bandwidth and FLOPS unknown")
            found.accelerators.append(acc)
    if len(whole) < 2:
        return
    linked = [g for g in whole if g.nvlink_count > 0 or g.nvlink_peers]
    if not linked:
        found.notes.append(f"no NVLink between the {len(whole)} GPUs: they talk over PCIe")
        return
    buses = {g.bus_id.lower() for g in whole}
    all_to_all = all(len(g.nvlink_peers & buses) >= len(whole) - 1 for g in whole)
    switch = any(g.nvswitch for g in whole) or (all_to_all and len(whole) > 2)
    m = skus.match(whole[0].name)
    gbps = m.link_gbps if m is not None and m.link_kind == "nvlink" else None
    links = max(g.nvlink_count for g in whole)
    kind = hw.INTERCONNECT_KIND_NVSWITCH if switch else hw.INTERCONNECT_KIND_NVLINK
    name = f"{'NVSwitch' if switch else 'NVLink'} ({links} NVLink links per GPU)"
    found.interconnects.append(hw.Interconnect(kind=kind, bandwidth_gigabytes_per_second=gbps or 0.0, name=name))
    if gbps is None:
        found.notes.append(f"{name}: per-GPU link bandwidth unknown for {whole[0].name}")


def _details(g: Gpu) -> str:
    """What the Fleet has no field for: UUID, PCI bus, compute capability, NVLink, MIG."""
    parts = [f"GPU {g.index} {g.uuid or '(no UUID)'}", f"PCI {g.bus_id or '?'}"]
    if g.compute_capability:
        parts.append(f"compute capability {g.compute_capability}")
    if g.nvlink_count or g.nvswitch:
        parts.append(f"{g.nvlink_count} NVLink links{' to NVSwitch' if g.nvswitch else ''}")
    if g.mig:
        parts.append(f"MIG on, {len(g.mig_instances)} instance(s)")
    return ", ".join(parts)


# ---- NVML ----------------------------------------------------------------------------------


def _from_nvml() -> list[Gpu]:
    try:
        nv: Any = importlib.import_module("pynvml")
    except ImportError:
        raise ProbeError("nvidia-ml-py is not installed (pip install 'accelplan[nvidia]')") from None
    try:
        nv.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        raise ProbeError(f"NVML unavailable ({e})") from None
    try:
        return [_nvml_gpu(nv, i) for i in range(nv.nvmlDeviceGetCount())]
    except ProbeError:
        raise
    except Exception as e:
        raise ProbeError(f"NVML query failed ({e})") from None
    finally:
        with contextlib.suppress(Exception):  # shutting down is best effort
            nv.nvmlShutdown()


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _nvml_gpu(nv: Any, i: int) -> Gpu:
    h = nv.nvmlDeviceGetHandleByIndex(i)
    pci = nv.nvmlDeviceGetPciInfo(h)
    g = Gpu(
        index=i,
        name=_text(nv.nvmlDeviceGetName(h)),
        memory_bytes=int(nv.nvmlDeviceGetMemoryInfo(h).total),
        uuid=_text(nv.nvmlDeviceGetUUID(h)),
        bus_id=_text(getattr(pci, "busIdLegacy", "") or pci.busId),
    )
    try:
        major, minor = nv.nvmlDeviceGetCudaComputeCapability(h)
        g.compute_capability = f"{major}.{minor}"
    except Exception:  # old drivers
        pass
    with contextlib.suppress(Exception):  # not in every driver; sysfs is asked instead
        g.numa_node = int(nv.nvmlDeviceGetNumaNodeId(h))
    try:
        current, _pending = nv.nvmlDeviceGetMigMode(h)
        g.mig = current == nv.NVML_DEVICE_MIG_ENABLE
    except Exception:  # GPUs without MIG raise NotSupported
        g.mig = False
    if g.mig:
        for j in range(nv.nvmlDeviceGetMaxMigDeviceCount(h)):
            try:
                mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
            except Exception:  # an empty slot
                continue
            g.mig_instances.append(
                Gpu(
                    index=j,
                    name=_text(nv.nvmlDeviceGetName(mh)),
                    memory_bytes=int(nv.nvmlDeviceGetMemoryInfo(mh).total),
                    uuid=_text(nv.nvmlDeviceGetUUID(mh)),
                    numa_node=g.numa_node,
                )
            )
    for link in range(int(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18))):
        try:
            if nv.nvmlDeviceGetNvLinkState(h, link) != nv.NVML_FEATURE_ENABLED:
                continue
        except Exception:  # link absent
            continue
        g.nvlink_count += 1
        try:
            if nv.nvmlDeviceGetNvLinkRemoteDeviceType(h, link) == nv.NVML_NVLINK_DEVICE_TYPE_SWITCH:
                g.nvswitch = True
                continue
        except Exception:  # older drivers cannot say; the peer's bus id still can
            pass
        with contextlib.suppress(Exception):  # peer unknown
            g.nvlink_peers.add(_text(nv.nvmlDeviceGetNvLinkRemotePciInfo(h, link).busId).lower())
    return g


# ---- nvidia-smi ----------------------------------------------------------------------------


def _from_smi(host: Host, found: Found) -> list[Gpu]:
    out = host.run(["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"])
    gpus = parse_query(out)
    if any(g.mig for g in gpus):
        try:
            add_mig(gpus, host.run(["nvidia-smi", "-L"]))
            found.notes.append("MIG slice memory is the profile's nominal size (nvidia-smi -L); NVML gives it exactly")
        except ProbeError as e:
            found.warnings.append(f"MIG instances unknown: {e}")
    if len(gpus) > 1:
        try:
            add_topology(gpus, host.run(["nvidia-smi", "topo", "-m"]))
        except ProbeError as e:
            found.warnings.append(f"NVLink topology unknown: {e}")
    return gpus


def parse_query(out: str) -> list[Gpu]:
    """GPUs from ``nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits``."""
    gpus = []
    for row in csv.reader(line for line in out.splitlines() if line.strip()):
        cells = [c.strip() for c in row]
        if len(cells) < 4:
            raise ProbeError(f"nvidia-smi: unexpected query row {row!r}")
        cells += [""] * (7 - len(cells))
        try:
            mib = int(float(cells[3]))
        except ValueError:
            raise ProbeError(f"nvidia-smi: memory.total {cells[3]!r} is not a number of MiB") from None
        gpus.append(
            Gpu(
                index=int(cells[0]),
                name=cells[1],
                uuid=cells[2],
                memory_bytes=mib * 2**20,
                bus_id=cells[4].lower(),
                compute_capability="" if cells[5].startswith("[") else cells[5],
                mig=cells[6].lower() == "enabled",
            )
        )
    return gpus


def add_mig(gpus: list[Gpu], listing: str) -> None:
    """MIG instances from ``nvidia-smi -L`` (``MIG 3g.20gb Device 0: (UUID: MIG-...)`` lines)."""
    by_index = {g.index: g for g in gpus}
    current: Gpu | None = None
    for line in listing.splitlines():
        if m := _GPU_LINE.match(line):
            current = by_index.get(int(m.group(1)))
        elif (m := _MIG_LINE.match(line)) and current is not None:
            size = _PROFILE_GB.fullmatch(m.group(1))
            current.mig_instances.append(
                Gpu(
                    index=int(m.group(2)),
                    name=f"{current.name} MIG {m.group(1)}",
                    memory_bytes=int(size.group(1)) * 2**30 if size else 0,
                    uuid=m.group(3).strip(),
                )
            )


def add_topology(gpus: list[Gpu], matrix: str) -> None:
    """NVLink peers from ``nvidia-smi topo -m``: a cell ``NV<n>`` means n links between the pair."""
    lines = [line for line in matrix.splitlines() if line.strip()]
    if not lines:
        return
    header = lines[0].split()
    cols = [c for c in header if re.fullmatch(r"GPU\d+|NIC\d+|mlx\S*", c)]
    by_index = {g.index: g for g in gpus}
    for line in lines[1:]:
        cells = line.split()
        row = re.fullmatch(r"GPU(\d+)", cells[0]) if cells else None
        if row is None or int(row.group(1)) not in by_index:
            continue
        g = by_index[int(row.group(1))]
        for col, cell in zip(cols, cells[1 : 1 + len(cols)], strict=False):
            peer = re.fullmatch(r"GPU(\d+)", col)
            nv = re.fullmatch(r"NV(\d+)", cell)
            if peer and nv and int(peer.group(1)) in by_index:
                g.nvlink_peers.add(by_index[int(peer.group(1))].bus_id.lower())
                g.nvlink_count = max(g.nvlink_count, int(nv.group(1)))
