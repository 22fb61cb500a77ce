"""RankNodes read and answered as wire bytes (rpc/rank_wire.py) equals the per-message path, byte for byte."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from accelplan.client import node_verdicts
from accelplan.v1 import hardware_pb2, models_pb2, scheduling_pb2
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.errors import InvalidArgument, NotFound
from accelplan_server.rpc import rank_wire
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.scheduler import SchedulerServicer

SHAPES = [
    {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2", "nvidia.com/gpu.memory": "23034"},
    {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"},
    {"nvidia.com/gpu.product": "Tesla-T4", "nvidia.com/gpu.count": "1"},
    {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.count": "4"},
    {},
]


@pytest.fixture(scope="module")
def servicer(catalog: Catalog) -> SchedulerServicer:
    return SchedulerServicer(catalog)


def request(seed: int, n: int = 300, **kw: object) -> scheduling_pb2.RankNodesRequest:
    """n nodes in a few shapes; some priced, some given as fleets, names of several lengths and scripts."""
    rng = random.Random(seed)
    nodes = []
    for k in range(n):
        node = scheduling_pb2.NodeInventory(name=f"n{k}-" + rng.choice(["", "gpu", "ü" * 20, "x" * 90]))
        node.labels.update(rng.choice(SHAPES))
        roll = rng.random()
        if roll < 0.1:
            node.price_per_hour_usd = rng.choice([0.5, 3.0])
        elif roll < 0.15:
            node.labels.clear()
            node.fleet.accelerators.append(hardware_pb2.Accelerator(sku="a100-80gb-sxm"))
        nodes.append(node)
    w = scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-8b"), concurrency=8)
    return scheduling_pb2.RankNodesRequest(workload=w, nodes=nodes, **kw)  # type: ignore[arg-type]


def outcome(call: object) -> object:
    """The answer's bytes, or the error's type and fields."""
    try:
        return call()  # type: ignore[operator]
    except (InvalidArgument, NotFound) as e:
        return type(e).__name__, sorted(map(str, getattr(e, "violations", [e])))


def same_answer(servicer: SchedulerServicer, req: scheduling_pb2.RankNodesRequest, wire: bool) -> None:
    raw = req.SerializeToString()
    assert (rank_wire.read_request(raw) is not None) is wire
    fast = outcome(lambda: servicer.rank_bytes(raw))
    plain = outcome(lambda: servicer.rank_plain(req).SerializeToString())
    assert fast == plain
    assert outcome(lambda: servicer.rank(req).SerializeToString()) == plain


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"policy": 4, "top_k": 250},
        {"policy": 3},
        {"policy": 2, "devices_per_replica": 2},
        {"top_k": 1},
        {"verdict_layout": 1},
        {"verdict_layout": 2},
        {"verdict_layout": 2, "policy": 4, "top_k": 250},
        {"verdict_layout": 2, "top_k": 1},
    ],
)
def test_plain_requests_answer_as_the_message_path(servicer: SchedulerServicer, kw: dict[str, object]) -> None:
    same_answer(servicer, request(7, **kw), wire=True)


@pytest.mark.parametrize("kw", [{}, {"policy": 4, "top_k": 40}, {"policy": 3, "devices_per_replica": 1}])
def test_the_grouped_layout_holds_the_per_node_verdicts(servicer: SchedulerServicer, kw: dict[str, object]) -> None:
    req = request(13, **kw)
    per_node = servicer.rank(req)
    req.verdict_layout = scheduling_pb2.VERDICT_LAYOUT_GROUPED
    grouped = servicer.rank(req)
    assert not grouped.verdicts and grouped.HasField("ranked") and not per_node.HasField("ranked")
    assert node_verdicts(grouped) == list(per_node.verdicts) == node_verdicts(per_node)
    assert len(grouped.ranked.verdicts) == len({v.SerializeToString() for v in grouped.ranked.verdicts})
    assert sorted(set(grouped.ranked.verdict_indexes)) == list(range(len(grouped.ranked.verdicts)))
    assert len(grouped.SerializeToString()) < len(per_node.SerializeToString()) / 2
    per_node.ClearField("verdicts")
    grouped.ClearField("ranked")
    assert grouped == per_node  # counts, context length and assumptions alike


def test_more_groups_than_a_one_byte_index(servicer: SchedulerServicer) -> None:
    req = request(4, n=400, verdict_layout=scheduling_pb2.VERDICT_LAYOUT_GROUPED)
    for k, node in enumerate(req.nodes):
        node.ClearField("fleet")
        node.labels.update(SHAPES[1])
        node.price_per_hour_usd = 10 + k / 100  # 400 prices: 400 costs per token, 400 verdicts
    req.policy = scheduling_pb2.PLACEMENT_POLICY_CHEAPEST
    got = servicer.rank(req)
    assert len(got.ranked.verdicts) == 400 and max(got.ranked.verdict_indexes) == 399
    same_answer(servicer, req, wire=False)
    req.verdict_layout = scheduling_pb2.VERDICT_LAYOUT_PER_NODE
    assert node_verdicts(got) == list(servicer.rank(req).verdicts)


def test_an_unknown_layout_is_a_bad_field(servicer: SchedulerServicer) -> None:
    req = request(2, n=5)
    req.verdict_layout = 9  # type: ignore[assignment]
    with pytest.raises(InvalidArgument) as e:
        servicer.rank(req)
    assert [v.field for v in e.value.violations] == ["verdict_layout"]
    same_answer(servicer, req, wire=True)


def test_bad_fields_name_the_same_paths(servicer: SchedulerServicer) -> None:
    req = request(3)
    req.nodes[5].ClearField("fleet")
    req.nodes[5].labels.update({**SHAPES[0], "nvidia.com/gpu.count": "many"})
    req.nodes[9].price_per_hour_usd = -1
    req.nodes[12].name = req.nodes[3].name
    req.nodes[20].name = ""
    req.policy = 99  # type: ignore[assignment]
    same_answer(servicer, req, wire=False)  # an empty name is not written: not the plain form
    req.nodes[20].name = "\x00"
    same_answer(servicer, req, wire=True)
    with pytest.raises(InvalidArgument) as e:
        servicer.rank_bytes(req.SerializeToString())
    assert len(e.value.violations) == 4
    req.workload.model.model_id = "no-such-model"
    req.ClearField("policy")
    for i in (5, 9, 12, 20):
        req.nodes[i].CopyFrom(scheduling_pb2.NodeInventory(name=f"fixed-{i}", labels=SHAPES[1]))
    same_answer(servicer, req, wire=True)


def test_other_forms_take_the_message_path(servicer: SchedulerServicer) -> None:
    req = request(5)
    req.nodes[7].name = "z" * 130  # a two-byte length
    same_answer(servicer, req, wire=False)
    req = request(5)
    req.nodes[7].name = ""  # no name field: the node starts with its labels
    same_answer(servicer, req, wire=False)
    req = request(5)
    req.nodes[7].Clear()  # an empty node: no bytes at all
    same_answer(servicer, req, wire=False)
    full = request(5)
    for k, node in enumerate(full.nodes):
        node.labels["kubernetes.io/hostname"] = f"host-{k}"  # every node's bytes distinct
    same_answer(servicer, full, wire=False)
    same_answer(servicer, scheduling_pb2.RankNodesRequest(workload=request(1).workload), wire=False)


def test_a_second_name_field_is_not_read_as_the_first() -> None:
    req = request(2, n=3)
    raw = bytearray(req.SerializeToString())
    node = req.nodes[1].SerializeToString() + b"\x0a\x00"  # a parser keeps the last name: ""
    raw = bytearray(scheduling_pb2.RankNodesRequest(workload=req.workload).SerializeToString())
    for i in range(3):
        body = node if i == 1 else req.nodes[i].SerializeToString()
        raw += b"\x12" + rank_wire.varint(len(body)) + body
    assert scheduling_pb2.RankNodesRequest.FromString(bytes(raw)).nodes[1].name == ""
    assert rank_wire.read_request(bytes(raw)) is None


def test_a_name_longer_than_its_node_is_not_the_plain_form() -> None:
    req = request(2, n=3)
    short = b"\x0a\x05ab"  # says 5 bytes of name, has 2
    raw = scheduling_pb2.RankNodesRequest(workload=req.workload).SerializeToString()
    for i in range(3):
        body = short if i == 1 else req.nodes[i].SerializeToString()
        raw += b"\x12" + rank_wire.varint(len(body)) + body
    assert rank_wire.read_request(raw) is None
    with pytest.raises(DecodeError):
        scheduling_pb2.RankNodesRequest.FromString(raw)


def test_duplicate_names_are_read_and_checked(servicer: SchedulerServicer) -> None:
    req = request(3, n=6)
    req.nodes[4].name = req.nodes[1].name
    wire = rank_wire.read_request(req.SerializeToString())
    assert wire is not None and not wire.names_unique
    with pytest.raises(InvalidArgument) as e:
        servicer.rank_bytes(req.SerializeToString())
    assert [v.field for v in e.value.violations] == ["nodes[4].name"]


def test_nodes_read_as_bytes_equal_nodes_read_as_messages(servicer: SchedulerServicer) -> None:
    req = request(11)
    wire = rank_wire.read_request(req.SerializeToString())
    assert wire is not None and len(set(wire.rests)) <= len(SHAPES) * 3 + 1  # shape x price, and the fleet
    assert wire.header == scheduling_pb2.RankNodesRequest(workload=req.workload)
    assert wire.heads == rank_wire.name_fields(wire.names)
    fast, slow = servicer._nodes_from_wire(wire, Violations()), servicer._nodes(req, Violations())
    assert list(fast[0]) == slow[0] and fast[2] == slow[2]
    assert wire.names[2:5] == slow[0][2:5] and wire.names_unique
    assert [s.key for s in fast[1]] == [s.key for s in slow[1]]


def test_undecodable_bytes_raise_decode_error(servicer: SchedulerServicer) -> None:
    raw = request(1, n=4).SerializeToString()
    with pytest.raises(DecodeError):
        servicer.rank_bytes(raw[:-3])
    bad_utf8 = raw.replace(b"n0-", b"n0\xff", 1)
    assert rank_wire.read_request(bad_utf8) is None
    with pytest.raises(DecodeError):
        servicer.rank_bytes(bad_utf8)


def test_name_fields_and_verdicts_match_messages() -> None:
    names = ["a", "ü" * 70, "with\x00nul", "x" * 300, ""]
    verdicts = [scheduling_pb2.NodeVerdict(node_name=n) for n in names]
    assert rank_wire.name_fields(names) == [v.SerializeToString() for v in verdicts]
    groups = [("g1",), ("g2",)]
    tails = {g: scheduling_pb2.NodeVerdict(feasible=True, reason=g[0], score=7).SerializeToString() for g in groups}
    group_of = [groups[i % 2] for i in range(len(names))]
    order = [3, 0, 4, 1]
    expected = scheduling_pb2.RankNodesResponse()
    for i in order:
        expected.verdicts.add(node_name=names[i], feasible=True, reason=group_of[i][0], score=7)
    got = rank_wire.encode_verdicts(order, group_of, rank_wire.name_fields(names), tails)
    assert got == expected.SerializeToString()
