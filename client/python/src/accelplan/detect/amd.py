"""AMD Instinct/Radeon GPUs: ``rocm-smi --json`` (devices, XGMI links), else ``amd-smi static --json``."""

from __future__ import annotations

import json
import re
from typing import Any

from accelplan.detect import skus
from accelplan.detect.base import Found, Host, ProbeError, memory_from_text, pci_numa_node
from accelplan.v1 import hardware_pb2 as hw

_LINK_KEY = re.compile(r"link type between DRM devices (\d+) and (\d+)", re.IGNORECASE)


def probe(host: Host) -> Found:
    """AMD GPUs through rocm-smi, falling back to amd-smi."""
    found = Found()
    if host.which("rocm-smi") is not None:
        devices = parse_rocm_smi(
            host.run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--showbus", "--json"])
        )
        try:
            links = parse_topotype(host.run(["rocm-smi", "--showtopotype", "--json"]))
        except ProbeError as e:
            links = {}
            found.warnings.append(f"XGMI topology unknown: {e}")
    elif host.which("amd-smi") is not None:
        devices = parse_amd_smi(host.run(["amd-smi", "static", "--asic", "--vram", "--bus", "--json"]))
        links = {}
        found.notes.append("amd-smi gives no XGMI matrix here; links unknown")
    else:
        raise ProbeError("neither rocm-smi nor amd-smi found on PATH: no AMD GPU detected")
    for name, memory, bus in devices:
        acc = hw.Accelerator(type=hw.ACCELERATOR_TYPE_ROCM_GPU, memory_bytes=memory, name=name)
        node = pci_numa_node(host, bus) if bus else None
        if node is not None:
            acc.numa_node = node
        m = skus.match(name)
        if m is not None:
            acc.sku = m.sku
        else:
            found.notes.append(f"{name}: no catalogue sku; memory bandwidth and FLOPS unknown")
        found.accelerators.append(acc)
    n = len(devices)
    xgmi_pairs = {p for p, kind in links.items() if kind.upper() == "XGMI"}
    if n > 1 and xgmi_pairs:
        m = skus.match(devices[0][0])
        gbps = m.link_gbps if m is not None and m.link_kind == "xgmi_infinity_fabric" else None
        full = len(xgmi_pairs) >= n * (n - 1) // 2
        found.interconnects.append(
            hw.Interconnect(
                kind=hw.INTERCONNECT_KIND_XGMI_INFINITY_FABRIC,
                bandwidth_gigabytes_per_second=gbps or 0.0,
                name=f"xGMI ({'all-to-all' if full else f'{len(xgmi_pairs)} GPU pairs'})",
            )
        )
        if gbps is None:
            found.notes.append("xGMI bandwidth per GPU unknown for this model")
    elif n > 1:
        found.notes.append(f"no xGMI between the {n} GPUs: they talk over PCIe")
    return found


def _get(card: dict[str, Any], *names: str) -> str:
    lower = {k.lower(): v for k, v in card.items()}
    for n in names:
        if n.lower() in lower:
            return str(lower[n.lower()]).strip()
    return ""


def parse_rocm_smi(out: str) -> list[tuple[str, int, str]]:
    """(name, VRAM bytes, PCI bus) per card from ``rocm-smi --showproductname --showmeminfo vram --showbus --json``."""
    try:
        data = json.loads(out)
    except json.JSONDecodeError as e:
        raise ProbeError(f"rocm-smi: not JSON ({e})") from None
    cards = sorted((k for k in data if k.lower().startswith("card")), key=lambda k: int(re.sub(r"\D", "", k) or 0))
    devices = []
    for key in cards:
        card = data[key]
        name = _get(card, "Card Series", "Card series", "Card SKU", "Card Model") or key
        vram = _get(card, "VRAM Total Memory (B)")
        if not vram.isdigit():
            raise ProbeError(f"rocm-smi: {key} has no 'VRAM Total Memory (B)'")
        devices.append((name, int(vram), _get(card, "PCI Bus")))
    return devices


def parse_topotype(out: str) -> dict[tuple[int, int], str]:
    """Link type per GPU pair from ``rocm-smi --showtopotype --json``."""
    try:
        data = json.loads(out)
    except json.JSONDecodeError as e:
        raise ProbeError(f"rocm-smi --showtopotype: not JSON ({e})") from None
    links = {}
    for section in data.values():
        if not isinstance(section, dict):
            continue
        for key, value in section.items():
            m = _LINK_KEY.search(key)
            if m:
                a, b = sorted((int(m.group(1)), int(m.group(2))))
                links[(a, b)] = str(value)
    return links


def parse_amd_smi(out: str) -> list[tuple[str, int, str]]:
    """(name, VRAM bytes, PCI bus) per GPU from ``amd-smi static --asic --vram --bus --json``."""
    try:
        data = json.loads(out)
    except json.JSONDecodeError as e:
        raise ProbeError(f"amd-smi: not JSON ({e})") from None
    if isinstance(data, dict):
        data = data.get("gpu_data", [data])
    devices = []
    for gpu in data:
        name = str(gpu.get("asic", {}).get("market_name", "")) or f"GPU {gpu.get('gpu')}"
        size = gpu.get("vram", {}).get("size", "")
        if isinstance(size, dict):
            memory = memory_from_text(f"{size.get('value')} {size.get('unit', 'MB').replace('MB', 'MiB')}")
        else:
            memory = memory_from_text(str(size).replace("MB", "MiB"))
        devices.append((name, memory, str(gpu.get("bus", {}).get("bdf", ""))))
    return devices
