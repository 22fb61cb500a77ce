"""Device names as tools report them, mapped to catalogue skus (data in skus.json, a source per row)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from accelplan.v1 import hardware_pb2 as hw

LINK_KINDS: dict[str, hw.InterconnectKind.ValueType] = {
    "nvlink": hw.INTERCONNECT_KIND_NVLINK,
    "nvswitch": hw.INTERCONNECT_KIND_NVSWITCH,
    "xgmi_infinity_fabric": hw.INTERCONNECT_KIND_XGMI_INFINITY_FABRIC,
    "infiniband": hw.INTERCONNECT_KIND_INFINIBAND,
    "roce": hw.INTERCONNECT_KIND_ROCE,
    "roce_v2": hw.INTERCONNECT_KIND_ROCE_V2,
    "ici": hw.INTERCONNECT_KIND_ICI,
}


@dataclass(frozen=True)
class SkuMatch:
    """A catalogue sku and its per-device link (kind name, GB/s or None when unsourced)."""

    sku: str
    link_kind: str | None
    link_gbps: float | None
    memory_bytes: int = 0  # only where the device cannot report it (TPU chips)


@cache
def _rows() -> tuple[tuple[re.Pattern[str], SkuMatch], ...]:
    data = json.loads(resources.files("accelplan.detect").joinpath("skus.json").read_text())
    rows = []
    for r in data["skus"]:
        link = r.get("link") or {}
        gbps = link.get("gbps")
        rows.append(
            (
                re.compile(r["pattern"], re.IGNORECASE),
                SkuMatch(
                    r["sku"], link.get("kind"), float(gbps) if gbps is not None else None, int(r.get("memory_bytes", 0))
                ),
            )
        )
    return tuple(rows)


def match(name: str) -> SkuMatch | None:
    """The sku whose pattern matches the whole reported name, or None."""
    clean = " ".join(name.split())
    for pattern, m in _rows():
        if pattern.fullmatch(clean):
            return m
    return None


def link_gbps(sku: str) -> float | None:
    """The catalogue's per-device link bandwidth for a sku, None when unsourced or unknown."""
    for _, m in _rows():
        if m.sku == sku:
            return m.link_gbps
    return None
