from __future__ import annotations

from typing import Any

import orjson
import pytest

from accelplan_server.adapters.kubernetes.ranking import shape_of
from accelplan_server.adapters.kubernetes.wire import BadArgs, args_from_json, parse_args

MIXED = {
    "kubernetes.io/hostname": "a",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/mig.strategy": "mixed",
    "nvidia.com/mig-1g.10gb.count": "14",
    "nvidia.com/mig-3g.40gb.count": "2",
    "nvidia.com/mig.capable": "true",
    "team": "x",
}


def _args(*labels: dict[str, str]) -> dict[str, Any]:
    items = [{"metadata": {"name": f"n{i}", "labels": lab}, "status": {"images": []}} for i, lab in enumerate(labels)]
    return {"Pod": {"metadata": {"name": "p"}}, "Nodes": {"metadata": {}, "items": items}, "NodeNames": None}


def test_raw_and_decoded_paths_agree_on_shapes_including_mixed_mig() -> None:
    plain = {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2", "pool": "p"}
    body = _args(MIXED, plain, {})
    raw, decoded = parse_args(orjson.dumps(body)), args_from_json(body)
    assert raw.names == decoded.names == ["n0", "n1", "n2"]
    assert raw.shapes == decoded.shapes == [shape_of(MIXED), shape_of(plain), ()]
    assert ("nvidia.com/mig-1g.10gb.count", "14") in shape_of(MIXED)
    assert all(k != "team" and k != "nvidia.com/mig.capable" for k, _ in shape_of(MIXED))


def test_node_names_only() -> None:
    args = parse_args(b'{"Pod": {"metadata": {}}, "Nodes": null, "NodeNames": ["a", "b"]}')
    assert (args.names, args.shapes, args.nodes) == (["a", "b"], None, None)


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"Pod": null, "NodeNames": []}', b'{"Pod": {}}', b'{"Pod": [], "NodeNames": []}',
     b'{"Pod": {}, "Nodes": {"items": [{"metadata": {"labels": {"nvidia.com/gpu.count": 4}}}]}}'],
)  # fmt: skip
def test_not_extender_args(body: bytes) -> None:
    with pytest.raises(BadArgs):
        parse_args(body)


def test_prioritize_parsing_skips_the_raw_nodes_but_not_mixed_mig_labels() -> None:
    plain = {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2"}
    lean = parse_args(orjson.dumps(_args(plain, {})), keep_nodes=False)
    assert lean.nodes is None and lean.shapes == [shape_of(plain), ()]
    mixed = parse_args(orjson.dumps(_args(MIXED, plain)), keep_nodes=False)
    assert mixed.shapes == [shape_of(MIXED), shape_of(plain)]
