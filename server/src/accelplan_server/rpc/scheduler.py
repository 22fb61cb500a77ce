"""The accelplan.v1.SchedulerService servicer: validate, convert, call core.scheduling, convert back.

In-process callers (the Kubernetes extender) use ``rank`` and ``right_size``, which raise the
core's InvalidArgument / NotFound; the gRPC methods map those to statuses.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import grpc

from accelplan.v1 import hardware_pb2, scheduler_service_pb2_grpc, scheduling_pb2
from accelplan_server.core import quantization as quant
from accelplan_server.core.catalog import Catalog, CloudInstance
from accelplan_server.core.cost import cheapest_per_device
from accelplan_server.core.errors import FieldViolation, InvalidArgument, NotFound, invalid
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.specs import SpecResolver
from accelplan_server.core.memory.serving import DEFAULT_CONTEXT_LENGTH
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.footprint import ModelProfile
from accelplan_server.core.scheduling.labels import LabelTable, NodeShape
from accelplan_server.core.scheduling.rank import Group, Policy, Ranker, Ranking, ShapeResult, TooManyShapes
from accelplan_server.core.scheduling.right_size import DEFAULT_MAX_DEVICES, Objective, RightSizer, Variant
from accelplan_server.core.scheduling.sizing import MAX_SEARCHED_DEVICES, ServingWorkload, Sizer
from accelplan_server.rpc import convert, cost, limits, messages, node_sets, rank_wire
from accelplan_server.rpc.answers import remembered
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.deadlines import InlineBudget
from accelplan_server.rpc.shape_memo import ShapeMemo
from accelplan_server.rpc.status import Offload, translate_errors

Ctx = grpc.ServicerContext
DEFAULT_PROMPT_TOKENS = 512
MAX_DEVICES_PER_REPLICA = 1024


class Layout(enum.IntEnum):
    """How RankNodesResponse lists verdicts (accelplan.v1.VerdictLayout's numbers)."""

    PER_NODE = 1
    GROUPED = 2


class _WorkloadParts(NamedTuple):
    """The Workload fields validated before the model is resolved."""

    quantization: quant.Quantization | None
    kv_quantization: quant.Quantization | None
    min_decode: float | None
    max_ttft: float | None


def _positive(msg: scheduling_pb2.Workload, name: str, field: str, bad: Violations) -> float | None:
    if not msg.HasField(name):  # type: ignore[arg-type]
        return None
    value = float(getattr(msg, name))
    if not (math.isfinite(value) and 0 < value <= limits.MAX_SLO_VALUE):
        bad.add(field, f"must be a number above 0 and at most {limits.MAX_SLO_VALUE:g}")
        return None
    return value


class SchedulerServicer(scheduler_service_pb2_grpc.SchedulerServiceServicer):
    """Implements accelplan.v1.SchedulerService over a loaded catalogue.

    Construct once (``SchedulerServicer(load_catalog())``) and share: the label table,
    model profiles and price table are built here; calls are thread-safe.

    ``inline_seconds``, when given, is the work a call may do where it arrives: a RankNodes that
    would size more new device shapes than that pays for (rpc/cost.py's PER_SHAPE_SECONDS each)
    raises Offload over gRPC, and core.scheduling.rank.TooManyShapes in-process, before sizing any;
    a RankNodes or RightSize still sizing after that long raises Offload (rpc.deadlines.InlineBudget).
    The serving process sets it to its heavy lane's threshold and reruns such calls in the lane.
    """

    def __init__(
        self,
        catalog: Catalog,
        profiles: Mapping[str, ModelProfile] | None = None,
        *,
        inline_seconds: float | None = None,
    ) -> None:
        self.catalog = catalog
        self.inline_seconds = inline_seconds
        self.max_fresh_shapes = None if inline_seconds is None else max(1, int(inline_seconds / cost.PER_SHAPE_SECONDS))
        self.specs_of = SpecResolver(catalog, BandwidthTable.from_catalog(catalog))
        self.table = LabelTable(catalog)
        self.cheapest: dict[str, CloudInstance] = cheapest_per_device(catalog)
        self.skus = {a.sku.lower(): a for a in catalog.accelerators}
        self.profiles: Mapping[str, ModelProfile] = profiles or {
            m.id: (
                ModelProfile.from_architecture(Architecture.from_config(m.architecture), m.id)
                if m.architecture
                else ModelProfile(m.parameter_count, m.active_parameter_count, None, m.id)
            )
            for m in catalog.models
        }
        self._instances = {sku: messages.instance_message(i) for sku, i in self.cheapest.items()}
        self._memo_owner = object()
        """Keys this servicer's remembered shape results (results depend on its catalogue)."""

    def _budget(self) -> InlineBudget | None:
        """A fresh inline budget for one call, when this servicer has one."""
        return None if self.inline_seconds is None else InlineBudget(self.inline_seconds)

    # ----- the workload -----

    def _workload(
        self, msg: scheduling_pb2.Workload, present: bool, bad: Violations
    ) -> tuple[convert.ModelRef, _WorkloadParts]:
        field = "workload"
        ref = convert.model_spec(msg.model, f"{field}.model", bad, present=present and msg.HasField("model"))
        q = convert.enum_value(quant.Quantization, msg.quantization, f"{field}.quantization", bad, required=False)
        kv = convert.enum_value(
            quant.Quantization, msg.kv_cache_quantization, f"{field}.kv_cache_quantization", bad, required=False
        )
        for name, cap in (
            ("context_length", limits.MAX_CONTEXT_LENGTH),
            ("concurrency", limits.MAX_BATCH_SIZE),
            ("prompt_tokens", limits.MAX_CONTEXT_LENGTH),
        ):
            if getattr(msg, name) > cap:
                bad.add(f"{field}.{name}", f"must be at most {cap}")
        parts = _WorkloadParts(
            quant.Quantization(q) if q else None,
            quant.Quantization(kv) if kv else None,
            _positive(msg, "min_decode_tokens_per_second", f"{field}.min_decode_tokens_per_second", bad),
            _positive(msg, "max_time_to_first_token_seconds", f"{field}.max_time_to_first_token_seconds", bad),
        )
        return ref, parts

    def _memo(self, msg: scheduling_pb2.Workload, devices_per_replica: int) -> ShapeMemo:
        """Shape results of earlier calls with this workload and replica size (rpc.shape_memo)."""
        return ShapeMemo(self._memo_owner, msg.SerializeToString(deterministic=True), devices_per_replica)

    def _serving(self, msg: scheduling_pb2.Workload, ref: convert.ModelRef, parts: _WorkloadParts) -> ServingWorkload:
        profile = ref.resolve(self.catalog, self.profiles)
        limit = profile.architecture.max_position_embeddings if profile.architecture else 0
        if ref.model_id and not limit:
            limit = self.catalog.model(ref.model_id).max_context_length
        context = msg.context_length or (min(DEFAULT_CONTEXT_LENGTH, limit) if limit else DEFAULT_CONTEXT_LENGTH)
        if limit and context > limit:
            raise invalid("workload.context_length", f"is {context}; the model supports at most {limit} tokens")
        prompt = msg.prompt_tokens or DEFAULT_PROMPT_TOKENS
        return ServingWorkload(
            profile,
            parts.quantization,
            context,
            msg.concurrency or 1,
            parts.kv_quantization,
            prompt,
            parts.min_decode,
            parts.max_ttft,
        )

    @staticmethod
    def _assumptions(w: ServingWorkload, msg: scheduling_pb2.Workload) -> list[str]:
        notes = []
        if not msg.context_length:
            notes.append(f"Context length {w.context_length} tokens per sequence (the default).")
        if w.quantization is None:
            notes.append("Precision: the widest each device runs that fits (BF16, FP16, FP8, INT8, then INT4).")
        notes.append("Memory per device is compared with 0.9 of the device (vLLM's default --gpu-memory-utilization).")
        notes.append(
            f"Speeds from the roofline at {w.concurrency} concurrent sequence(s), {w.prompt_tokens}-token prompts, "
            "128 output tokens."
        )
        return notes

    # ----- RankNodes -----

    def _nodes(
        self, request: scheduling_pb2.RankNodesRequest, bad: Violations
    ) -> tuple[list[str], list[NodeShape], list[float | None] | None]:
        nodes = request.nodes
        n = len(nodes)
        if n > limits.MAX_RANK_NODES:
            bad.add("nodes", f"has {n} entries; at most {limits.MAX_RANK_NODES} are accepted")
            return [], [], None
        names: list[str] = []
        shapes: list[NodeShape] = []
        prices: list[float | None] | None = None
        shape_of = self.table.shape
        max_labels = limits.MAX_NODE_LABELS
        for i, node in enumerate(nodes):
            names.append(node.name)
            has = node.HasField
            if has("price_per_hour_usd"):
                if prices is None:
                    prices = [None] * i
                price = node.price_per_hour_usd
                if not (math.isfinite(price) and 0 <= price <= limits.MAX_PRICE_PER_HOUR_USD):
                    bad.add(f"nodes[{i}].price_per_hour_usd", f"must be from 0 to {limits.MAX_PRICE_PER_HOUR_USD:g}")
                prices.append(price)
            elif prices is not None:
                prices.append(None)
            if has("fleet") and node.fleet.accelerators:
                shapes.append(self._fleet_shape(node.fleet, f"nodes[{i}].fleet", bad))
                continue
            labels = node.labels
            if len(labels) > max_labels:
                bad.add(f"nodes[{i}].labels", f"has {len(labels)} entries; at most {max_labels} are accepted")
                continue
            try:
                shapes.append(shape_of(labels))
            except InvalidArgument as e:
                bad.items.extend(FieldViolation(f"nodes[{i}].{v.field}", v.description) for v in e.violations)
        return names, shapes, prices

    def _inventory(
        self, node: scheduling_pb2.NodeInventory
    ) -> tuple[NodeShape | None, float | None, list[FieldViolation]]:
        """One node's shape and price (None where bad) and its violations, fields relative to the node."""
        local = Violations()
        _, shapes, prices = self._nodes(scheduling_pb2.RankNodesRequest(nodes=[node]), local)
        fields = [FieldViolation(v.field.removeprefix("nodes[0]."), v.description) for v in local.items]
        return (shapes[0] if shapes else None), (prices[0] if prices else None), fields

    def _read_groups(
        self, groups: Sequence[scheduling_pb2.NodeGroup], room: int, bad: Violations
    ) -> list[tuple[list[str], NodeShape | None, float | None]]:
        """Each group's members' names, its shape (None where bad) and price; its inventory read once.

        ``room`` is how many nodes the cap still allows; past it, a violation and no groups.
        """
        sizes = [len(g.node_names) for g in groups]
        if sum(sizes) > room:
            bad.add(
                "node_groups",
                f"members and nodes come to {sum(sizes) + limits.MAX_RANK_NODES - room}; at most "
                f"{limits.MAX_RANK_NODES} are accepted",
            )
            return []
        out = []
        for g, group in enumerate(groups):
            path = f"node_groups[{g}]"
            members: list[str] = list(group.node_names)
            if not members:
                bad.add(f"{path}.node_names", "must list at least one node")
            if group.inventory.name:
                bad.add(f"{path}.inventory.name", "must be empty: a group's members are named in node_names")
            node = scheduling_pb2.NodeInventory()
            node.CopyFrom(group.inventory)
            node.name = "-"  # members' names are checked with the others'
            shape, price, fields = self._inventory(node)
            for v in fields:
                bad.add(f"{path}.inventory.{v.field}", v.description)
            out.append((members, shape, price))
        return out

    def _nodes_from_wire(
        self, wire: rank_wire.WireRequest, bad: Violations
    ) -> tuple[Sequence[str], list[NodeShape], list[float | None] | None]:
        """``_nodes`` for a request read as bytes: each distinct node body parsed (and checked) once.

        Reading a protobuf map costs ~1 us per lookup, and nodes of one shape differ only in their
        name: the distinct bodies go through ``_nodes`` as NodeInventory messages, and each node
        takes its body's shape, price and violations by one dict lookup.
        """
        parsed: dict[bytes, tuple[NodeShape | None, float | None, list[FieldViolation]]] = {}
        for rest in dict.fromkeys(wire.rests):
            node = scheduling_pb2.NodeInventory.FromString(rest)
            node.name = "-"  # checked with the others' names
            parsed[rest] = self._inventory(node)
        rests = wire.rests
        has_price = any(p[1] is not None for p in parsed.values())
        if all(p[0] is not None and not p[2] for p in parsed.values()):
            shape_of = {rest: p[0] for rest, p in parsed.items()}
            shapes_out: list[NodeShape] = list(map(shape_of.__getitem__, rests))  # type: ignore[arg-type]
            price_of = {rest: p[1] for rest, p in parsed.items()}
            prices_out = list(map(price_of.__getitem__, rests)) if has_price else None
        else:
            shapes_out, prices_out = [], [] if has_price else None
            for k, rest in enumerate(rests):
                shape, price, fields = parsed[rest]
                for v in fields:
                    bad.add(f"nodes[{k}].{v.field}", v.description)
                if shape is not None:
                    shapes_out.append(shape)
                if prices_out is not None:
                    prices_out.append(price)
        return wire.names, shapes_out, prices_out

    def _fleet_shape(self, msg: hardware_pb2.Fleet, field: str, bad: Violations) -> NodeShape:
        fleet = convert.fleet(msg, field, bad, required=True, skus=self.skus)
        first = fleet.accelerators[0] if fleet.accelerators else None
        sku = first.sku if first and all(a.sku == first.sku for a in fleet.accelerators) else ""
        model = self.catalog.accelerator(sku) if sku else None
        product = model.name if model else (first.name if first else "")
        return NodeShape(fleet, product, sku, (), ("fleet", msg.SerializeToString()))

    def rank(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """RankNodes for in-process callers; raises InvalidArgument / NotFound."""
        if rank_wire.worth_reading(request):
            return scheduling_pb2.RankNodesResponse.FromString(self.rank_bytes(request.SerializeToString()))
        return scheduling_pb2.RankNodesResponse.FromString(self._rank_encoded(request, None, None))

    def rank_bytes(self, raw: bytes) -> bytes:
        """RankNodes from a request's wire bytes to the response's.

        Raises InvalidArgument / NotFound, and DecodeError when ``raw`` is not a RankNodesRequest.
        """
        return self._rank_encoded(*self._read(raw))

    def _read(
        self, raw: bytes
    ) -> tuple[scheduling_pb2.RankNodesRequest, rank_wire.WireRequest | None, node_sets.NodeSet | None]:
        """The request, its nodes as wire bytes where they read so, and what they read to.

        Bytes after the workload field that this servicer has read before (a scheduler's next pod
        over the same nodes) come from ``node_sets``; otherwise they are read here and kept.
        DecodeError when ``raw`` is not a RankNodesRequest.
        """
        split = node_sets.split_workload(raw)
        if split is not None:
            workload, rest = split
            known = node_sets.get(self, rest)
            if known is None:
                wire = rank_wire.read_request(rest)
                if wire is None:  # not the plain form (nor is the whole request)
                    return scheduling_pb2.RankNodesRequest.FromString(raw), None, None
                if not wire.header.HasField("workload"):  # else a second workload field: read the whole
                    bad = Violations()
                    _, shapes, prices = self._nodes_from_wire(wire, bad)
                    known = node_sets.NodeSet(wire.header, wire._replace(rests=[]), shapes, prices, bad)
                    node_sets.put(self, rest, known)
            if known is not None:
                request = scheduling_pb2.RankNodesRequest()
                request.CopyFrom(known.fields)
                request.workload.MergeFromString(workload)
                return request, known.wire._replace(header=request), known
        wire = rank_wire.read_request(raw)
        return (wire.header if wire is not None else scheduling_pb2.RankNodesRequest.FromString(raw)), wire, None

    def rank_plain(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """``rank`` one message per node: the reference the wire-bytes path is tested against."""
        _, ranking, workload = self._ranking(request, None, None)
        resp = self._summary(request, workload, ranking.feasible_count, ranking.shape_count)
        grouped: dict[bytes, int] = {}
        for i in ranking.order:
            v = ranking.verdict(i)
            msg = _group_verdict((v.shape, v.score, v.price_per_hour_usd, v.cost_per_million_tokens_usd))
            if request.verdict_layout == scheduling_pb2.VERDICT_LAYOUT_GROUPED:
                index = grouped.setdefault(msg.SerializeToString(), len(grouped))
                if index == len(resp.ranked.verdicts):
                    resp.ranked.verdicts.append(msg)
                resp.ranked.node_names.append(v.node_name)
                resp.ranked.verdict_indexes.append(index)
            else:
                msg.node_name = v.node_name
                resp.verdicts.append(msg)
        if request.verdict_layout == scheduling_pb2.VERDICT_LAYOUT_GROUPED:
            resp.ranked.SetInParent()
        return resp

    def _ranking(
        self,
        request: scheduling_pb2.RankNodesRequest,
        wire: rank_wire.WireRequest | None,
        nodes: node_sets.NodeSet | None,
    ) -> tuple[Sequence[str], Ranking, ServingWorkload]:
        """Checks (every bad field at once), then the core's ranking.

        Nodes from ``nodes`` (what ``wire`` read to) when given, else read from ``wire`` or the message.
        """
        bad = Violations()
        ref, parts, policy = self._checks(request, bad)
        names: Sequence[str]
        if wire is not None and nodes is not None:
            bad.items.extend(nodes.violations.items)
            bad.missing.extend(nodes.violations.missing)
            names, shapes, prices = wire.names, nodes.shapes, nodes.prices
        elif wire is not None:
            names, shapes, prices = self._nodes_from_wire(wire, bad)
        else:
            names, shapes, prices = self._nodes(request, bad)
        node_count = len(names)
        starts: list[int] = []
        groups = self._read_groups(request.node_groups, limits.MAX_RANK_NODES - node_count, bad)
        if groups:
            # New lists: a node set's own are kept for later requests.
            names = every = list(names)
            shapes = list(shapes)
            prices = None if prices is None else list(prices)
            for members, shape, price in groups:
                starts.append(len(every))
                every += members
                if shape is not None:
                    shapes += [shape] * len(members)
                if price is not None and prices is None:
                    prices = [None] * starts[-1]
                if prices is not None:
                    prices += [price] * len(members)
        if not node_count and not request.node_groups:
            bad.add("nodes", "must list at least one node (here or in node_groups)")
        if wire is None or groups or not wire.names_unique:  # read_request checked unique names' other rules
            _check_names(names, bad, _name_path(node_count, starts))
        bad.raise_if_any()
        ranker = self._ranker(request, ref, parts)
        ranking = ranker.rank_shapes(
            names, shapes, prices, request.devices_per_replica, Policy(policy or Policy.BEST_FIT), request.top_k
        )
        return names, ranking, ranker.sizer.workload

    def _checks(
        self, request: scheduling_pb2.RankNodesRequest, bad: Violations
    ) -> tuple[convert.ModelRef, _WorkloadParts, int | None]:
        """The request's fields but its nodes: (model, workload parts, policy)."""
        ref, parts = self._workload(request.workload, request.HasField("workload"), bad)
        policy = convert.enum_value(Policy, request.policy, "policy", bad, required=False)
        convert.enum_value(Layout, request.verdict_layout, "verdict_layout", bad, required=False)
        if request.devices_per_replica > MAX_DEVICES_PER_REPLICA:
            bad.add("devices_per_replica", f"must be at most {MAX_DEVICES_PER_REPLICA}")
        return ref, parts, policy

    def _ranker(self, request: scheduling_pb2.RankNodesRequest, ref: convert.ModelRef, parts: _WorkloadParts) -> Ranker:
        workload = self._serving(request.workload, ref, parts)
        memo = self._memo(request.workload, request.devices_per_replica)
        return Ranker(
            Sizer(workload, self.specs_of), self.catalog, self.cheapest, memo, self.max_fresh_shapes, self._budget()
        )

    def _rank_groups_encoded(self, request: scheduling_pb2.RankNodesRequest) -> bytes:
        """``_rank_encoded`` for node groups only, in the grouped layout: work per group, not per node.

        A group's members share a verdict and stand together in the order (same sort value,
        consecutive request positions), so the core ranks one entry per group and the answer
        copies each group's names as one run of bytes. Tests hold it to the per-node path.
        """
        bad = Violations()
        ref, parts, policy = self._checks(request, bad)
        groups = self._read_groups(request.node_groups, limits.MAX_RANK_NODES, bad)
        members = [m for m, _, _ in groups]
        starts = list(itertools.accumulate(map(len, members), initial=0))[:-1]
        _check_names(list(itertools.chain.from_iterable(members)), bad, _name_path(0, starts))
        bad.raise_if_any()
        shapes = [shape for _, shape, _ in groups if shape is not None]
        prices = [price for _, _, price in groups]
        ranker = self._ranker(request, ref, parts)
        ranking = ranker.rank_shapes(
            [""] * len(groups),
            shapes,
            prices if any(p is not None for p in prices) else None,
            request.devices_per_replica,
            Policy(policy or Policy.BEST_FIT),
            0,
        )
        tails = {key: _group_verdict(group).SerializeToString() for key, group in ranking.groups.items()}
        runs = []
        left = request.top_k or sum(map(len, members))
        for g in ranking.order:
            if left <= 0:
                break
            names = members[g] if len(members[g]) <= left else members[g][:left]
            left -= len(names)
            runs.append((rank_wire.names_field(names), len(names), tails[ranking.keys[g]]))
        feasible = sum(len(members[g]) for g, key in enumerate(ranking.keys) if ranking.groups[key][0].feasible)
        summary = self._summary(request, ranker.sizer.workload, feasible, ranking.shape_count)
        return summary.SerializeToString() + rank_wire.encode_ranked_runs(runs)

    def _summary(
        self, request: scheduling_pb2.RankNodesRequest, workload: ServingWorkload, feasible: int, shapes: int
    ) -> scheduling_pb2.RankNodesResponse:
        """A RankNodesResponse's fields but its verdicts."""
        return scheduling_pb2.RankNodesResponse(
            feasible_count=feasible,
            shape_count=shapes,
            context_length=workload.context_length,
            assumptions=self._assumptions(workload, request.workload),
        )

    def _rank_encoded(
        self,
        request: scheduling_pb2.RankNodesRequest,
        wire: rank_wire.WireRequest | None,
        nodes: node_sets.NodeSet | None,
    ) -> bytes:
        """The RankNodesResponse's wire bytes: every group's verdict serialized once, names added as bytes."""
        grouped = request.verdict_layout == scheduling_pb2.VERDICT_LAYOUT_GROUPED
        if grouped and wire is None and request.node_groups and not request.nodes:
            return self._rank_groups_encoded(request)
        names, ranking, workload = self._ranking(request, wire, nodes)
        tails = {key: _group_verdict(group).SerializeToString() for key, group in ranking.groups.items()}
        if wire is None:
            heads = rank_wire.name_fields(names)
        else:
            heads = wire.heads + rank_wire.name_fields(names[len(wire.heads) :]) if request.node_groups else wire.heads
        rest = self._summary(request, workload, ranking.feasible_count, ranking.shape_count).SerializeToString()
        if request.verdict_layout == scheduling_pb2.VERDICT_LAYOUT_GROUPED:
            return rest + rank_wire.encode_ranked(ranking.order, ranking.keys, heads, tails)
        return rank_wire.encode_verdicts(ranking.order, ranking.keys, heads, tails) + rest

    def rank_labels(
        self,
        workload: scheduling_pb2.Workload,
        nodes: Sequence[tuple[str, Mapping[str, str]]],
        *,
        devices_per_replica: int = 0,
        policy: int = 0,
        top_k: int = 0,
    ) -> Ranking:
        """RankNodes for in-process callers holding node labels as dicts (the Kubernetes extender).

        Same core and checks as ``rank`` without NodeInventory messages (reading a proto map
        costs ~1 us per label, a dict ~30 ns). Returns the core Ranking: ``order`` (request
        positions, best first), ``verdict(i)`` / ``verdicts`` (``node_name``, ``score``, and
        ``shape`` with ``feasible``, ``reason``, ``unresolvable``, ``attempt``). Raises
        InvalidArgument (paths ``nodes[i].labels["key"]``) / NotFound.
        """
        bad = Violations()
        if len(nodes) > limits.MAX_RANK_NODES:
            bad.add("nodes", f"has {len(nodes)} entries; at most {limits.MAX_RANK_NODES} are accepted")
        kept = nodes[: limits.MAX_RANK_NODES]
        shapes, errors = self.table.shapes([labels for _, labels in kept])
        for i, e in errors:
            bad.items.extend(FieldViolation(f"nodes[{i}].{v.field}", v.description) for v in e.violations)
        bad.raise_if_any()
        return self.rank_shapes(
            workload,
            [name for name, _ in kept],
            shapes,
            devices_per_replica=devices_per_replica,
            policy=policy,
            top_k=top_k,
        )

    def rank_shapes(
        self,
        workload: scheduling_pb2.Workload,
        names: Sequence[str],
        shapes: Sequence[NodeShape],
        *,
        devices_per_replica: int = 0,
        policy: int = 0,
        top_k: int = 0,
    ) -> Ranking:
        """``rank_labels`` for nodes whose shapes a node cache already holds.

        A caller that watches nodes keeps ``servicer.table.shape(labels)`` per node (computed
        when the node changes; nodes of one hardware shape share one object), and each
        ranking then does no label work at all.
        """
        bad = Violations()
        ref, parts = self._workload(workload, True, bad)
        chosen = convert.enum_value(Policy, policy, "policy", bad, required=False)
        if devices_per_replica > MAX_DEVICES_PER_REPLICA:
            bad.add("devices_per_replica", f"must be at most {MAX_DEVICES_PER_REPLICA}")
        if len(names) != len(shapes):
            bad.add("nodes", f"{len(names)} names for {len(shapes)} shapes")
        elif len(names) > limits.MAX_RANK_NODES:
            bad.add("nodes", f"has {len(names)} entries; at most {limits.MAX_RANK_NODES} are accepted")
        _check_names(list(names), bad)
        bad.raise_if_any()
        serving = self._serving(workload, ref, parts)
        memo = self._memo(workload, devices_per_replica)
        ranker = Ranker(
            Sizer(serving, self.specs_of), self.catalog, self.cheapest, memo, self.max_fresh_shapes, self._budget()
        )
        return ranker.rank_shapes(names, shapes, None, devices_per_replica, Policy(chosen or Policy.BEST_FIT), top_k)

    @translate_errors
    def RankNodes(self, request: scheduling_pb2.RankNodesRequest, context: Ctx) -> scheduling_pb2.RankNodesResponse:
        """Which nodes can serve the workload, best first."""
        try:
            return self.rank(request)
        except TooManyShapes as e:
            raise Offload(e.fresh * cost.PER_SHAPE_SECONDS) from None

    def wire_methods(self) -> dict[str, Callable[[bytes, Ctx], bytes]]:
        """Methods a server may call with the request's wire bytes, answering the response's.

        For these the server skips its own parse and serialization (runtime.interceptors);
        bytes that are not the method's request raise protobuf's DecodeError.
        """
        return {"RankNodes": self._rank_nodes_wire}

    def _rank_nodes_wire(self, raw: bytes, context: Ctx) -> bytes:
        """RankNodes from and to wire bytes (DecodeError before any status is set)."""
        return self._rank_nodes_encoded(self._read(raw), context)

    @translate_errors
    def _rank_nodes_encoded(
        self,
        parsed: tuple[scheduling_pb2.RankNodesRequest, rank_wire.WireRequest | None, node_sets.NodeSet | None],
        context: Ctx,
    ) -> bytes:
        try:
            return self._rank_encoded(*parsed)
        except TooManyShapes as e:
            raise Offload(e.fresh * cost.PER_SHAPE_SECONDS) from None

    # ----- RightSize -----

    def right_size(self, request: scheduling_pb2.RightSizeRequest) -> scheduling_pb2.RightSizeResponse:
        """RightSize for in-process callers; raises InvalidArgument / NotFound."""
        bad = Violations()
        ref, parts = self._workload(request.workload, request.HasField("workload"), bad)
        objective = convert.enum_value(Objective, request.objective, "objective", bad, required=False)
        if request.max_devices > MAX_SEARCHED_DEVICES:
            bad.add("max_devices", f"must be at most {MAX_SEARCHED_DEVICES} (0 means {DEFAULT_MAX_DEVICES})")
        if len(request.skus) > len(self.skus):
            bad.add("skus", f"has {len(request.skus)} entries; the catalogue has {len(self.skus)}")
        models = []
        for i, sku in enumerate(request.skus):
            model = self.skus.get(sku.strip().lower()) if len(sku) <= limits.MAX_STRING_LENGTH else None
            if model is None:
                if len(sku) > limits.MAX_STRING_LENGTH:
                    bad.add(f"skus[{i}]", f"longer than {limits.MAX_STRING_LENGTH} characters")
                else:
                    bad.missing.append(
                        NotFound(
                            f"skus[{i}]",
                            f"no catalogue accelerator {sku!r}; ListAcceleratorModels lists the known skus",
                        )
                    )
            elif model not in models:
                models.append(model)
        bad.raise_if_any()
        workload = self._serving(request.workload, ref, parts)
        sizer = RightSizer(Sizer(workload, self.specs_of), self.catalog, self.table, self.cheapest)
        result = sizer.size(
            models or self.catalog.accelerators,
            request.max_devices or DEFAULT_MAX_DEVICES,
            Objective(objective or Objective.FEWEST_DEVICES),
            request.top_k,
            self._budget(),
        )
        resp = scheduling_pb2.RightSizeResponse(
            context_length=workload.context_length, assumptions=self._assumptions(workload, request.workload)
        )
        for v in result.variants:
            resp.variants.append(self._variant(v))
        for r in result.rejected:
            resp.rejected.add(
                sku=r.sku,
                reason=r.reason,
                cause=scheduling_pb2.RejectionCause.ValueType(int(r.cause)),
                device_count=r.device_count,
                quantization=convert.level_value(r.quantization),
            )
        return resp

    def _variant(self, v: Variant) -> scheduling_pb2.ServingVariant:
        a, art = v.attempt, v.artifacts
        msg = scheduling_pb2.ServingVariant(
            sku=v.model.sku,
            device_count=a.device_count,
            tensor_parallel_size=a.tensor_parallel,
            pipeline_parallel_size=a.pipeline_parallel,
            quantization=convert.level_value(a.quantization),
            memory_per_device_bytes=a.memory_per_device_bytes,
            decode_tokens_per_second=a.decode_tokens_per_second,
            time_to_first_token_seconds=a.time_to_first_token_seconds,
            device_memory_bytes=a.device_memory_bytes,
            assumptions=art.assumptions,
            artifacts=scheduling_pb2.SchedulingArtifacts(
                kubernetes_resource_limits=art.kubernetes_resource_limits,
                kubernetes_node_selector=art.kubernetes_node_selector,
                vllm_args=art.vllm_args,
                slurm_gres=art.slurm_gres,
                ray_bundles=[scheduling_pb2.RayBundle(resources=b) for b in art.ray_bundles],
                ray_placement_strategy=scheduling_pb2.RayPlacementStrategy.ValueType(int(art.ray_strategy)),
            ),
        )
        if v.cost_per_hour_usd is not None:
            msg.cost_per_hour_usd = v.cost_per_hour_usd
        if v.cost_per_million_tokens_usd is not None:
            msg.cost_per_million_tokens_usd = v.cost_per_million_tokens_usd
        if v.instance is not None:
            msg.priced_instance.CopyFrom(self._instances[v.model.sku])
        return msg

    @translate_errors
    @remembered
    def RightSize(self, request: scheduling_pb2.RightSizeRequest, context: Ctx) -> scheduling_pb2.RightSizeResponse:
        """Which devices, how many, at what precision, and what to ask for.

        A repeated request is answered from answers.remembered's table (the answer is a pure
        function of the request and the catalogue).
        """
        return self.right_size(request)


def _name_path(node_count: int, group_starts: list[int]) -> Callable[[int], str]:
    """The field path of the name at a request position: ``nodes[i].name``, then ``node_groups[g].node_names[j]``."""

    def path(i: int) -> str:
        if i < node_count:
            return f"nodes[{i}].name"
        g = bisect.bisect_right(group_starts, i) - 1
        return f"node_groups[{g}].node_names[{i - group_starts[g]}]"

    return path


def _check_names(names: Sequence[str], bad: Violations, path: Callable[[int], str] = "nodes[{}].name".format) -> None:
    """Every node name non-empty, within the length cap and unique (one C-level pass when they are)."""
    if all(names) and len(set(names)) == len(names) and max(map(len, names), default=0) <= limits.MAX_STRING_LENGTH:
        return
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not name:
            bad.add(path(i), "must not be empty")
        elif len(name) > limits.MAX_STRING_LENGTH:
            bad.add(path(i), f"longer than {limits.MAX_STRING_LENGTH} characters")
        elif name in seen:
            bad.add(path(i), "duplicates an earlier node's name")
        seen.add(name)


def _group_verdict(group: Group) -> scheduling_pb2.NodeVerdict:
    """The verdict a group of nodes shares: the shape's fields, the score and prices (no name)."""
    shape, score, price, cost = group
    msg = _shape_verdict(shape)
    msg.score = score
    if cost is not None:
        msg.cost_per_million_tokens_usd = cost
    if price is not None:
        msg.price_per_hour_usd = price
    return msg


def _shape_verdict(s: ShapeResult) -> scheduling_pb2.NodeVerdict:
    """The fields every node of a shape shares (no name, score or prices)."""
    msg = scheduling_pb2.NodeVerdict(
        feasible=s.feasible,
        reason=s.reason,
        sku=s.sku,
        unresolvable=s.unresolvable,
        replica_count=s.replica_count,
        assumptions=s.assumptions,
    )
    a = s.attempt
    if a is not None:
        msg.quantization = convert.level_value(a.quantization)
        msg.memory_per_device_bytes = a.memory_per_device_bytes
        msg.device_memory_bytes = a.device_memory_bytes
        msg.decode_tokens_per_second = a.decode_tokens_per_second
        msg.time_to_first_token_seconds = a.time_to_first_token_seconds
        if s.feasible:
            msg.device_count = a.device_count
            msg.tensor_parallel_size = a.tensor_parallel
            msg.pipeline_parallel_size = a.pipeline_parallel
    return msg
