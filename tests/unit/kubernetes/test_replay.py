"""Replays of the ExtenderArgs the real kube-scheduler v1.32 sent (recorded by tests/e2e_kubernetes).

Regenerate with ``ACCELPLAN_RECORD_FIXTURES=1 make e2e-kubernetes``. Nodes there: h100-a and h100-b
(4 x NVIDIA-H100-80GB-HBM3), l4 (8 x NVIDIA-L4) and cpu; pods big-* ask for Llama 3.1 70B at BF16 on
4 GPUs, small-* for Llama 3.1 8B at BF16 on 2 GPUs, plain-gpu has no annotation, typo a bad one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from accelplan_server.adapters.kubernetes.extender import Extender
from accelplan_server.adapters.kubernetes.nodecache import NodeCache
from accelplan_server.adapters.kubernetes.ranking import LocalRanker, ShapeRanker
from accelplan_server.adapters.kubernetes.wire import encode

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kubernetes"


def _load(pattern: str) -> dict[str, Any]:
    (path,) = FIXTURES.glob(pattern)
    body: dict[str, Any] = json.loads(path.read_bytes())
    return body


def _raw(pattern: str) -> bytes:
    (path,) = FIXTURES.glob(pattern)
    return path.read_bytes()


def _decoded(result: dict[str, Any]) -> dict[str, Any]:
    """The answer as kube-scheduler reads it (passing nodes are msgspec.Raw until encoded)."""
    decoded: dict[str, Any] = orjson.loads(encode(result))
    return decoded


@pytest.fixture(scope="module")
def ranker() -> ShapeRanker:
    return ShapeRanker(LocalRanker())


@pytest.fixture(scope="module")
def cache() -> Iterator[NodeCache]:
    c = NodeCache()
    c.replace(_load("full-nodes-*-filter-big-1.json")["Nodes"]["items"])
    yield c


def _names(result: dict[str, Any]) -> list[str]:
    return [n["metadata"]["name"] for n in result["Nodes"]["items"]]


def test_the_recorded_args_are_what_kube_scheduler_sends() -> None:
    full = _load("full-nodes-*-filter-big-1.json")
    assert list(full) == ["Pod", "Nodes", "NodeNames"]  # Go field names: no json tags
    assert full["NodeNames"] is None and len(full["Nodes"]["items"]) == 3
    names = _load("node-cache-0001-filter-big-1.json")
    assert names["Nodes"] is None and sorted(names["NodeNames"]) == ["h100-a", "l4"]


@pytest.mark.parametrize("load", [_raw, _load], ids=["raw-body", "decoded-json"])
def test_a_70b_bf16_pod_passes_the_h100_nodes_and_never_the_l4(ranker: ShapeRanker, load: Any) -> None:
    result = _decoded(Extender(ranker).filter(load("full-nodes-*-filter-big-1.json")))
    assert result["Error"] == ""
    assert _names(result) == ["h100-a", "h100-b"]
    assert list(result["FailedAndUnresolvableNodes"]) == ["l4"]
    reason = result["FailedAndUnresolvableNodes"]["l4"]
    assert "BF16 on 4 devices" in reason and "NVIDIA-L4" in reason, reason
    assert result["FailedNodes"] == {}


def test_the_passing_nodes_go_back_byte_for_byte(ranker: ShapeRanker) -> None:
    sent = _load("full-nodes-*-filter-big-1.json")["Nodes"]["items"]
    result = _decoded(Extender(ranker).filter(_raw("full-nodes-*-filter-big-1.json")))
    assert result["Nodes"]["items"] == sent[:2]


@pytest.mark.parametrize("raw", [True, False])
def test_any_key_case_is_read_as_go_reads_it(ranker: ShapeRanker, raw: bool) -> None:
    args = _load("full-nodes-*-filter-big-1.json")
    lowered = {"pod": args["Pod"], "nodes": {"ITEMS": args["Nodes"]["items"]}, "nodenames": None}
    body = orjson.dumps(lowered) if raw else lowered
    assert _names(_decoded(Extender(ranker).filter(body))) == ["h100-a", "h100-b"]


def test_prioritize_scores_the_filtered_nodes(ranker: ShapeRanker) -> None:
    scores = Extender(ranker).prioritize(_raw("full-nodes-*-prioritize-big-1.json"))
    assert [s["Host"] for s in scores] == ["h100-a", "h100-b"]
    assert all(0 < s["Score"] <= 10 for s in scores)
    assert scores[0]["Score"] == scores[1]["Score"]  # same shape, same score


def test_the_only_l4_with_room_takes_an_8b_pod(ranker: ShapeRanker) -> None:
    result = _decoded(Extender(ranker).filter(_raw("full-nodes-*-filter-small-0.json")))
    assert _names(result) == ["l4"] and result["Error"] == ""


def test_a_pod_without_annotations_passes_untouched(ranker: ShapeRanker) -> None:
    args = _load("full-nodes-*-filter-plain-gpu.json")
    result = _decoded(Extender(ranker).filter(_raw("full-nodes-*-filter-plain-gpu.json")))
    assert result["Nodes"]["items"] == args["Nodes"]["items"]
    assert (result["FailedNodes"], result["FailedAndUnresolvableNodes"], result["Error"]) == ({}, {}, "")
    assert {s["Score"] for s in Extender(ranker).prioritize(args)} == {0}


def test_a_malformed_annotation_is_an_error_naming_it(ranker: ShapeRanker) -> None:
    result = Extender(ranker).filter(_raw("full-nodes-*-filter-typo.json"))
    assert result["Error"].startswith("accelplan: pod default/typo: accelplan.dev/context-length: 'lots'")
    assert result["Nodes"] is None and result["NodeNames"] is None


def test_node_names_with_a_node_cache(ranker: ShapeRanker, cache: NodeCache) -> None:
    result = Extender(ranker, cache).filter(_raw("node-cache-0001-filter-big-1.json"))
    assert result["NodeNames"] == ["h100-a"]
    assert list(result["FailedAndUnresolvableNodes"]) == ["l4"]
    assert result["Nodes"] is None


def test_node_names_unknown_to_the_cache_fail_resolvably(ranker: ShapeRanker) -> None:
    empty = NodeCache()
    result = Extender(ranker, empty).filter(_load("node-cache-0001-filter-big-1.json"))
    assert result["NodeNames"] == []
    assert set(result["FailedNodes"]) == {"h100-a", "l4"}  # preemption or a later retry may help
    assert result["FailedAndUnresolvableNodes"] == {}


def test_node_names_without_a_node_cache_is_a_clear_error(ranker: ShapeRanker) -> None:
    result = Extender(ranker).filter(_load("node-cache-0001-filter-big-1.json"))
    assert "--node-cache" in result["Error"]


def test_a_node_whose_labels_rank_nodes_refuses_fails_alone(ranker: ShapeRanker) -> None:
    args = _load("full-nodes-*-filter-big-1.json")
    args["Nodes"]["items"][1]["metadata"]["labels"]["nvidia.com/gpu.memory"] = "lots"
    result = _decoded(Extender(ranker).filter(orjson.dumps(args)))
    assert _names(result) == ["h100-a"]
    bad = result["FailedAndUnresolvableNodes"][args["Nodes"]["items"][1]["metadata"]["name"]]
    assert "nvidia.com/gpu.memory" in bad and "lots" in bad


def test_an_unknown_model_fails_the_filter_with_rank_nodes_reason(ranker: ShapeRanker) -> None:
    args = _load("full-nodes-*-filter-big-1.json")
    args["Pod"]["metadata"]["annotations"]["accelplan.dev/model"] = "llama-9000"
    result = Extender(ranker).filter(args)
    assert "NOT_FOUND" in result["Error"] or "llama-9000" in result["Error"], result["Error"]


@pytest.mark.parametrize("body", [[], {"Nodes": None}, {"Pod": {}, "Nodes": None, "NodeNames": None}, "x", {"Pod": 1}])
@pytest.mark.parametrize("raw", [True, False])
def test_bodies_that_are_not_extender_args(ranker: ShapeRanker, body: Any, raw: bool) -> None:
    assert Extender(ranker).filter(orjson.dumps(body) if raw else body)["Error"]
    assert Extender(ranker).filter(b"{not json")["Error"].startswith("not an ExtenderArgs")


def test_labels_that_are_not_strings_are_refused_not_crashed_on(ranker: ShapeRanker) -> None:
    args = _load("full-nodes-*-filter-big-1.json")
    args["Nodes"]["items"][0]["metadata"]["labels"]["nvidia.com/gpu.count"] = 4
    assert "nvidia.com/gpu.count" in Extender(ranker).filter(orjson.dumps(args))["Error"]
