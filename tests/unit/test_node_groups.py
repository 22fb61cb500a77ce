"""RankNodesRequest.node_groups: a group's members rank exactly as the same nodes listed one by one."""

from __future__ import annotations

import pytest

from accelplan.v1 import hardware_pb2, models_pb2, scheduling_pb2
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.errors import InvalidArgument
from accelplan_server.rpc import limits, rank_wire
from accelplan_server.rpc.scheduler import SchedulerServicer
from tests.unit.test_rank_wire import SHAPES, same_answer

WORKLOAD = scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-8b"), concurrency=8)


@pytest.fixture(scope="module")
def servicer(catalog: Catalog) -> SchedulerServicer:
    return SchedulerServicer(catalog)


def inventories() -> list[scheduling_pb2.NodeInventory]:
    """Alike nodes (same labels, fleet or price) in runs, as groups would hold them."""
    out = []
    for g, labels in enumerate(SHAPES):
        for k in range(6):
            node = scheduling_pb2.NodeInventory(name=f"g{g}-n{k}", labels=labels)
            out.append(node)
    for k in range(4):
        priced = scheduling_pb2.NodeInventory(name=f"priced-{k}", labels=SHAPES[3], price_per_hour_usd=2.5)
        out.append(priced)
    for k in range(3):
        fleet = hardware_pb2.Fleet(accelerators=[hardware_pb2.Accelerator(sku="a100-80gb-sxm")] * 2)
        out.append(scheduling_pb2.NodeInventory(name=f"fleet-{k}", fleet=fleet))
    return out


def grouped(nodes: list[scheduling_pb2.NodeInventory], listed: int) -> scheduling_pb2.RankNodesRequest:
    """The first ``listed`` nodes as they are, the rest as groups of consecutive alike nodes."""
    req = scheduling_pb2.RankNodesRequest(workload=WORKLOAD, nodes=nodes[:listed])
    for node in nodes[listed:]:
        body = scheduling_pb2.NodeInventory()
        body.CopyFrom(node)
        body.name = ""
        last = req.node_groups[-1] if req.node_groups else None
        if last is None or last.inventory != body:
            last = req.node_groups.add(inventory=body)
        last.node_names.append(node.name)
    return req


@pytest.mark.parametrize("listed", [0, 5, 20])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"policy": 4},
        {"policy": 3, "top_k": 7},
        {"verdict_layout": 2},
        {"devices_per_replica": 2, "policy": 2},
        {"verdict_layout": 2, "policy": 3, "top_k": 8},  # a cut inside a group
        {"verdict_layout": 2, "policy": 4, "devices_per_replica": 1},
        {"verdict_layout": 2, "top_k": 30},
    ],
)
def test_members_rank_as_the_same_nodes_listed(servicer: SchedulerServicer, listed: int, kw: dict[str, int]) -> None:
    nodes = inventories()
    one_by_one = scheduling_pb2.RankNodesRequest(workload=WORKLOAD, nodes=nodes, **kw)  # type: ignore[arg-type]
    req = grouped(nodes, listed)
    req.MergeFrom(scheduling_pb2.RankNodesRequest(**kw))  # type: ignore[arg-type]
    assert len(req.node_groups) >= 3
    assert servicer.rank(req) == servicer.rank(one_by_one)
    same_answer(servicer, req, wire=listed > 0)  # the wire path reads nodes as bytes, groups as messages


def violations(servicer: SchedulerServicer, req: scheduling_pb2.RankNodesRequest) -> list[str]:
    with pytest.raises(InvalidArgument) as e:
        servicer.rank(req)
    same_answer(servicer, req, wire=bool(req.nodes))
    return sorted(v.field for v in e.value.violations)


def test_bad_groups_name_their_fields(servicer: SchedulerServicer) -> None:
    req = grouped(inventories(), 5)
    req.node_groups[1].inventory.labels["nvidia.com/gpu.count"] = "many"
    req.node_groups[2].inventory.name = "named"
    req.node_groups[3].ClearField("node_names")
    req.node_groups[4].node_names[1] = req.nodes[0].name
    req.node_groups[4].node_names[2] = ""
    req.node_groups[0].inventory.price_per_hour_usd = -1
    assert violations(servicer, req) == [
        "node_groups[0].inventory.price_per_hour_usd",
        'node_groups[1].inventory.labels["nvidia.com/gpu.count"]',
        "node_groups[2].inventory.name",
        "node_groups[3].node_names",
        "node_groups[4].node_names[1]",
        "node_groups[4].node_names[2]",
    ]


def test_bad_groups_alone_name_their_fields_in_either_layout(servicer: SchedulerServicer) -> None:
    for layout in (1, 2):
        req = grouped(inventories(), 0)
        req.verdict_layout = layout  # type: ignore[assignment]
        req.node_groups[1].inventory.labels["nvidia.com/gpu.count"] = "many"
        req.node_groups[3].node_names[0] = req.node_groups[0].node_names[2]
        req.policy = 9  # type: ignore[assignment]
        assert violations(servicer, req) == [
            'node_groups[1].inventory.labels["nvidia.com/gpu.count"]',
            "node_groups[3].node_names[0]",
            "policy",
        ]


def test_groups_count_against_the_node_cap(servicer: SchedulerServicer) -> None:
    req = grouped(inventories(), 5)
    req.node_groups[0].node_names.extend(f"extra-{k}" for k in range(limits.MAX_RANK_NODES))
    assert violations(servicer, req) == ["node_groups"]


def test_groups_alone_are_enough_and_nothing_is_not(servicer: SchedulerServicer) -> None:
    req = grouped(inventories(), 0)
    assert len(servicer.rank(req).verdicts) == len(inventories())
    req.ClearField("node_groups")
    assert violations(servicer, req) == ["nodes"]


def test_groups_alone_in_the_grouped_layout_are_ranked_per_group(
    servicer: SchedulerServicer, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = grouped(inventories(), 0)
    req.verdict_layout = scheduling_pb2.VERDICT_LAYOUT_GROUPED
    expected = servicer.rank_plain(req)

    def per_node(*_: object) -> None:
        raise AssertionError("the per-node path ran")

    monkeypatch.setattr(servicer, "_ranking", per_node)
    assert scheduling_pb2.RankNodesResponse.FromString(servicer.rank_bytes(req.SerializeToString())) == expected


def test_ranking_leaves_the_wire_request_as_it_was(servicer: SchedulerServicer) -> None:
    wire = rank_wire.read_request(grouped(inventories(), 10).SerializeToString())
    assert wire is not None and wire.header.node_groups
    first = servicer._ranking(wire.header, wire, None)[0]
    assert len(wire.names) == 10
    assert servicer._ranking(wire.header, wire, None)[0] == first
