"""RankNodes node sets kept by their bytes (rpc/node_sets.py): later requests over the same nodes answer alike."""

from __future__ import annotations

import pytest

from accelplan.v1 import models_pb2, scheduling_pb2
from accelplan_server.core import cache
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.errors import InvalidArgument
from accelplan_server.rpc import node_sets, rank_wire
from accelplan_server.rpc.scheduler import SchedulerServicer
from tests.unit.test_rank_wire import SHAPES, request


@pytest.fixture
def servicer(catalog: Catalog) -> SchedulerServicer:
    cache.set_total_bytes(cache.DEFAULT_TOTAL_BYTES)  # empty caches
    return SchedulerServicer(catalog)


def workload(model: str, context: int = 0) -> scheduling_pb2.Workload:
    return scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id=model), context_length=context)


def with_workload(req: scheduling_pb2.RankNodesRequest, w: scheduling_pb2.Workload) -> scheduling_pb2.RankNodesRequest:
    out = scheduling_pb2.RankNodesRequest()
    out.CopyFrom(req)
    out.workload.CopyFrom(w)
    return out


def test_split_workload_reads_the_leading_field_only() -> None:
    w = workload("llama-3.1-8b").SerializeToString()
    raw = scheduling_pb2.RankNodesRequest(workload=workload("llama-3.1-8b"), top_k=3).SerializeToString()
    assert node_sets.split_workload(raw) == (w, scheduling_pb2.RankNodesRequest(top_k=3).SerializeToString())
    assert node_sets.split_workload(scheduling_pb2.RankNodesRequest(top_k=3).SerializeToString()) is None
    assert node_sets.split_workload(raw[:3]) is None  # the field runs past the end
    long = scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="m" * 300))
    split = node_sets.split_workload(scheduling_pb2.RankNodesRequest(workload=long).SerializeToString())
    assert split == (long.SerializeToString(), b"")  # a two-byte length
    assert node_sets.split_workload(b"\x0a\xff\xff\xff\xff\xff\xff") is None  # no end to the length


@pytest.mark.parametrize("kw", [{}, {"verdict_layout": 2, "top_k": 40}, {"policy": 4, "devices_per_replica": 2}])
def test_later_workloads_over_kept_nodes_answer_as_read_anew(
    servicer: SchedulerServicer, kw: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = request(1, **kw)
    # deterministic: map entries sorted, so a copy's bytes equal the original's (a plain serialization
    # writes a copied map in its own hash order), as a caller repeating its node list sends them.
    servicer.rank_bytes(base.SerializeToString(deterministic=True))
    assert len(node_sets._SETS) == 1

    def read_again(*_: object) -> None:
        raise AssertionError("the nodes were read again")

    for w in (workload("llama-3.1-70b", 8192), workload("qwen2.5-32b"), workload("llama-3.1-8b", 2048)):
        req = with_workload(base, w)
        expected = servicer.rank_plain(req).SerializeToString()
        with monkeypatch.context() as m:
            m.setattr(servicer, "_nodes_from_wire", read_again)
            m.setattr(rank_wire, "read_request", read_again)
            assert servicer.rank_bytes(req.SerializeToString(deterministic=True)) == expected
    assert len(node_sets._SETS) == 1


def test_sets_are_kept_per_servicer(catalog: Catalog, servicer: SchedulerServicer) -> None:
    raw = request(2).SerializeToString()
    servicer.rank_bytes(raw)
    other = SchedulerServicer(catalog)
    other.rank_bytes(raw)
    assert len(node_sets._SETS) == 2


def test_small_requests_and_bad_nodes_are_not_kept(servicer: SchedulerServicer) -> None:
    servicer.rank_bytes(request(3, n=node_sets.MIN_NODES - 1).SerializeToString())
    bad = request(4)
    bad.nodes[7].labels["nvidia.com/gpu.count"] = "many"
    for _ in range(2):
        with pytest.raises(InvalidArgument) as e:
            servicer.rank_bytes(bad.SerializeToString())
        assert [v.field for v in e.value.violations] == ['nodes[7].labels["nvidia.com/gpu.count"]']
    assert len(node_sets._SETS) == 0


def test_a_second_workload_field_merges_as_protobuf_does(servicer: SchedulerServicer) -> None:
    base = request(5)
    later = scheduling_pb2.RankNodesRequest(workload=scheduling_pb2.Workload(context_length=2048))
    raw = base.SerializeToString() + later.SerializeToString()
    merged = scheduling_pb2.RankNodesRequest.FromString(raw)
    assert merged.workload.context_length == 2048 and merged.workload.model.model_id == "llama-3.1-8b"
    assert servicer.rank_bytes(raw) == servicer.rank_plain(merged).SerializeToString()
    assert len(node_sets._SETS) == 0


def test_groups_beside_kept_nodes_leave_the_set_as_it_was(servicer: SchedulerServicer) -> None:
    req = request(6, n=70)
    req.node_groups.add(inventory=scheduling_pb2.NodeInventory(labels=SHAPES[1]), node_names=["g1", "g2"])
    req.node_groups.add(inventory=scheduling_pb2.NodeInventory(labels=SHAPES[0]), node_names=["g3"])
    raw = req.SerializeToString()
    expected = servicer.rank_plain(req).SerializeToString()
    assert servicer.rank_bytes(raw) == expected
    (kept,) = [entry.value for entry in node_sets._SETS._cache.values()]  # type: ignore[attr-defined]
    shapes = list(kept.shapes)  # type: ignore[attr-defined]
    assert servicer.rank_bytes(raw) == expected
    assert kept.shapes == shapes and len(kept.wire.heads) == 70  # type: ignore[attr-defined]
