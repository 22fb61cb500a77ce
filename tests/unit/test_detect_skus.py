"""The client's name->sku table agrees with the server's catalogue (the client cannot import it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelplan.detect import skus

ROOT = Path(__file__).parents[2]
CATALOG = {
    a["sku"]: a
    for a in json.loads((ROOT / "server/src/accelplan_server/data/accelerators.json").read_text())["accelerators"]
}
TABLE = json.loads((ROOT / "client/python/src/accelplan/detect/skus.json").read_text())["skus"]


@pytest.mark.parametrize("row", TABLE, ids=[r["sku"] + ":" + r["pattern"] for r in TABLE])
def test_row_names_a_catalogue_sku_with_its_link_and_a_source(row: dict) -> None:
    cat = CATALOG[row["sku"]]
    link = cat["interconnect"]
    want = None if link is None else {"kind": link["kind"], "gbps": link["bandwidth_gigabytes_per_second"]}
    assert row["link"] == want
    assert row["name_source"]
    if "memory_bytes" in row:
        assert row["memory_bytes"] == cat["memory_bytes"]


@pytest.mark.parametrize(
    ("reported", "sku"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA  H100 PCIe", "h100-pcie"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb-sxm"),
        ("Tesla T4", "t4"),
        ("AMD Instinct MI300X OAM", "mi300x"),
        ("HL-225", "gaudi2"),
        ("HL-325L", "gaudi3"),
        ("AWS Trainium2", "trainium2"),
        ("Apple M2 Max (38-core GPU)", "apple-m2-max"),
    ],
)
def test_reported_names_map(reported: str, sku: str) -> None:
    m = skus.match(reported)
    assert m is not None and m.sku == sku


@pytest.mark.parametrize(
    "reported",
    ["NVIDIA H200 NVL", "NVIDIA A100-PCIE-40GB", "Apple M2 Max (30-core GPU)", "NVIDIA H100 80GB HBM3 MIG 1g.10gb"],
)
def test_names_without_a_catalogue_row_stay_unknown(reported: str) -> None:
    assert skus.match(reported) is None
