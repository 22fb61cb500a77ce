"""RankNodes: which nodes can serve a workload, best first, computed once per device shape.

Nodes come in a few hardware shapes. Each distinct shape (same devices, links and
availability) is sized once; every node of that shape shares its result, and only
the price-dependent numbers and the score are per node.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from accelplan_server.core.catalog import Catalog, CloudInstance
from accelplan_server.core.hardware.accelerators import Accelerator, AcceleratorType
from accelplan_server.core.planning.sharding import chip_view, device_link_bandwidth_gbps
from accelplan_server.core.quantization import Quantization as Q
from accelplan_server.core.scheduling.devices import AUTO_ORDER, supported_levels
from accelplan_server.core.scheduling.labels import NodeShape
from accelplan_server.core.scheduling.sizing import (
    Attempt,
    Cause,
    Progress,
    Sizer,
    candidate_counts,
    closest_miss,
    gib,
)

try:
    from accelplan_server.core.scheduling import _rank_order as _compiled
except ImportError:  # installed without a C compiler: the plain sort
    _compiled = None  # type: ignore[assignment]

INFEASIBLE = 1000
"""Sort value of an infeasible node: after every feasible one (those sort by 100 - score)."""


class Policy(enum.IntEnum):
    """How feasible nodes are ordered (accelplan.v1.PlacementPolicy's numbers)."""

    BEST_FIT = 1
    MOST_HEADROOM = 2
    FASTEST = 3
    CHEAPEST = 4


class ShapeResult(NamedTuple):
    """The verdict every node of one shape shares (a tuple: a frozen dataclass pays a setattr per field)."""

    feasible: bool
    reason: str
    attempt: Attempt | None
    """The replica chosen, or the closest miss; None when nothing could be tried."""
    unresolvable: bool
    replica_count: int
    available_count: int
    device_total: int
    sku: str
    per_device_price_usd: float | None
    """Cheapest sourced cloud price per device of this sku; None when unknown."""
    assumptions: tuple[str, ...]


class Verdict(NamedTuple):
    """One node's verdict."""

    position: int
    """Position in the request."""
    node_name: str
    shape: ShapeResult
    score: int
    price_per_hour_usd: float | None
    cost_per_million_tokens_usd: float | None


@dataclass(frozen=True)
class RankNode:
    """One node as the ranking sees it."""

    name: str
    shape: NodeShape
    price_per_hour_usd: float | None = None


Group = tuple[ShapeResult, int, float | None, float | None]
"""What nodes of one shape and price share: (shape result, score, price per hour, cost per million tokens)."""


class Ranking:
    """Nodes in ranked order, feasible first by score, and what was computed.

    ``order`` holds request positions best first; ``verdict(position)`` is one node's verdict.
    ``verdicts`` spells them all out (built on first use: the numbers are shared per group,
    so a caller that needs only some nodes, or only the order, pays nothing per node).
    """

    def __init__(
        self,
        order: list[int],
        names: Sequence[str],
        keys: Sequence[object],
        groups: Mapping[object, Group],
        feasible_count: int,
        shape_count: int,
    ) -> None:
        self.order = order
        self.names = names
        self.keys = keys
        """Per request position: its group's key in ``groups``."""
        self.groups = groups
        """Each group's shared tuple."""
        self.feasible_count = feasible_count
        self.shape_count = shape_count
        self._verdicts: list[Verdict] | None = None

    def verdict(self, position: int) -> Verdict:
        """The verdict of the node at ``position`` in the request."""
        return Verdict(position, self.names[position], *self.groups[self.keys[position]])

    @property
    def verdicts(self) -> list[Verdict]:
        """Every ranked node's verdict, best first."""
        if self._verdicts is None:
            names, keys, groups = self.names, self.keys, self.groups
            self._verdicts = [Verdict(i, names[i], *groups[keys[i]]) for i in self.order]
        return self._verdicts


class _Devices(NamedTuple):
    """A shape's devices as sizing sees them (worked out once per NodeShape object)."""

    every: list[Accelerator]
    """Per-chip devices, largest memory first."""
    available: list[Accelerator]
    """The available ones, likewise."""
    every_keys: tuple[tuple[object, ...], ...]
    """``spec_key`` of each of ``every``: a replica of the first n has the key ``every_keys[:n]``."""
    available_keys: tuple[tuple[object, ...], ...]
    link_gbps: float
    """Best device-to-device link."""


class _Facts(NamedTuple):
    """A shape's facts that come from the catalogue (worked out once per NodeShape and catalogue)."""

    catalog: Catalog
    label: str
    """How reasons name the device: the node's product label, else the sku's or device's name."""
    every_runs: tuple[Q, ...]
    """Levels the devices run, widest first."""
    available_runs: tuple[Q, ...]
    """Levels the available devices run."""


def _devices(shape: NodeShape) -> _Devices:
    def work() -> _Devices:
        fleet = shape.fleet
        every = _expand(fleet.accelerators)
        available = _expand([a for _, a in fleet.available()])
        keys = tuple(d.spec_key for d in every)
        avail_keys = keys if len(available) == len(every) else tuple(d.spec_key for d in available)
        return _Devices(every, available, keys, avail_keys, device_link_bandwidth_gbps(fleet))

    return shape.memo("rank.devices", work)


def _expand(devices: Sequence[Accelerator]) -> list[Accelerator]:
    """Per-chip devices (a multi-chip TPU device counts as its chips), largest memory first."""
    if any(d.chips > 1 for d in devices):
        views: dict[int, Accelerator] = {}  # alike devices are one object (validated once): one view each
        out = []
        for d in devices:
            view = views.get(id(d))
            if view is None:
                view = views[id(d)] = chip_view(d)
            out.extend([view] * d.chips)
    else:
        out = list(devices)
    out.sort(key=lambda d: -d.memory_bytes)
    return out


class ShapeMemo(Protocol):
    """Shape results remembered across calls for one workload and replica size, by NodeShape.key."""

    def get_many(self, keys: Sequence[tuple[object, ...]]) -> list[ShapeResult | None]:
        """The result remembered for each key, or None."""
        ...

    def put_many(self, items: Iterable[tuple[tuple[object, ...], ShapeResult]]) -> None:
        """Remember (key, result) pairs (the memo may drop them)."""
        ...


class TooManyShapes(Exception):
    """A ranking would size more shapes than its budget allows (nothing was sized)."""

    def __init__(self, fresh: int, limit: int) -> None:
        self.fresh = fresh
        """Distinct shapes the ranking would size (those not remembered)."""
        self.limit = limit
        super().__init__(f"{fresh} device shapes to size; this ranking may size {limit}")


class Ranker:
    """Ranks nodes for one workload (a Sizer) against the catalogue's prices.

    ``memo``, when given, holds results of earlier calls for this same workload and replica
    size (a scheduler asks about one pod several times: filter, then prioritize, then its
    replicas); shapes without a key (``NodeShape.key`` empty) are never remembered.
    ``max_fresh``, when given, is how many shapes a ranking may size: past it, ``rank``
    raises TooManyShapes before sizing any (a caller runs such rankings elsewhere).
    """

    def __init__(
        self,
        sizer: Sizer,
        catalog: Catalog,
        cheapest: dict[str, CloudInstance],
        memo: ShapeMemo | None = None,
        max_fresh: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.sizer = sizer
        self.catalog = catalog
        self.cheapest = cheapest
        self.memo = memo
        self.max_fresh = max_fresh
        self.progress = progress
        """Called with (shapes sized, shapes to size) before each shape is sized; it may raise to stop."""

    def evaluate(self, shape: NodeShape, devices_per_replica: int) -> ShapeResult:
        """Size one replica on a node of this shape."""
        facts = _devices(shape)
        every, available = facts.every, facts.available
        instance = self.cheapest.get(shape.sku)
        price = instance.price_per_hour_usd / instance.accelerator_count if instance else None

        def result(
            ok: bool, reason: str, attempt: Attempt | None, unresolvable: bool, replicas: int = 0
        ) -> ShapeResult:
            return ShapeResult(
                ok,
                reason,
                attempt,
                unresolvable,
                replicas,
                len(available),
                len(every),
                shape.sku,
                price,
                shape.assumptions,
            )

        if not every:
            return result(False, shape.assumptions[0] if shape.assumptions else "No accelerators.", None, True)
        if every[0].type is AcceleratorType.CPU:
            return result(False, "The node lists only CPUs; accelplan places models on accelerators.", None, True)
        label, every_runs, available_runs = self._facts(shape)[1:]
        found = self._search(
            label, available_runs, available, facts.available_keys, facts.link_gbps, devices_per_replica
        )
        if isinstance(found, str) or not found.ok:
            why = found if isinstance(found, str) else found.miss
            attempt = None if isinstance(found, str) else found
            unresolvable = True
            if len(available) < len(every):
                again = self._search(label, every_runs, every, facts.every_keys, facts.link_gbps, devices_per_replica)
                unresolvable = isinstance(again, str) or not again.ok
            return result(False, _sentence(why), attempt, unresolvable)
        replicas = len(available) // found.device_count
        split = f"tensor parallel {found.tensor_parallel}"
        if found.pipeline_parallel > 1:
            split += f", pipeline parallel {found.pipeline_parallel}"
        speed = (
            f"; {found.decode_tokens_per_second:.1f} tokens/s per sequence" if found.decode_tokens_per_second else ""
        )
        more = f"; {replicas} replicas fit" if replicas > 1 else ""
        reason = (
            f"Fits at {found.quantization.display_name} on {found.device_count} x {label} ({split}): "
            f"{gib(found.memory_per_device_bytes)} of {gib(found.usable_bytes)} usable per device{speed}{more}."
        )
        return result(True, reason, found, False, replicas)

    def _facts(self, shape: NodeShape) -> _Facts:
        """The shape's facts from the catalogue (its device's name, the levels it runs), remembered on it."""

        def work() -> _Facts:
            facts = _devices(shape)
            d = shape.fleet.accelerators[0]
            model = self.catalog.accelerator(d.sku) if d.sku else None
            label = shape.product or (model.name if model else (d.name or d.type.name))
            sku_model = self.catalog.accelerator(shape.sku) if shape.sku else None
            every = supported_levels(facts.every[0], sku_model)
            available = supported_levels(facts.available[0], sku_model) if facts.available else ()
            return _Facts(self.catalog, label, every, available)

        found = shape.memo("rank.facts", work)
        return found if found.catalog is self.catalog else work()  # else first ranked against another catalogue

    def _search(
        self,
        label: str,
        runs: tuple[Q, ...],
        devices: list[Accelerator],
        keys: tuple[tuple[object, ...], ...],
        link: float,
        n_wanted: int,
    ) -> Attempt | str:
        """The first replica size that serves the workload (``runs``: the levels the devices run), else why not."""
        if not devices:
            return f"needs {max(1, n_wanted)} device(s); every device of the node is unavailable"
        if n_wanted > len(devices):
            return f"needs {n_wanted} devices per replica; the node has {len(devices)}"
        wanted = self.sizer.workload.quantization
        if wanted is not None:
            if wanted not in runs:
                names = ", ".join(q.display_name for q in runs)
                return f"{label} does not run {wanted.display_name} (it runs {names})"
            levels: Sequence[Q] = (wanted,)
        else:
            levels = [q for q in AUTO_ORDER if q in runs]
        counts = [n_wanted] if n_wanted else candidate_counts(len(devices))
        misses: list[Attempt] = []
        for q in levels:
            for n in counts:
                a = self.sizer.attempt(devices[:n], link, q, label, need_speed=True, key=keys[:n])
                if a is None:
                    continue
                if a.ok:
                    return a
                misses.append(a)
        miss = closest_miss(misses)
        if miss is None:
            return f"{self.sizer.workload.profile.layer_count} layers cannot be split over {counts[-1]} devices"
        miss = self.sizer.explained(miss, label)
        if miss.cause is Cause.MEMORY and wanted is None and len(levels) > 1:
            return miss.miss.replace(" at ", " even at ", 1)
        return miss

    def rank(self, nodes: Sequence[RankNode], devices_per_replica: int, policy: Policy, top_k: int) -> Ranking:
        """Every node's verdict, feasible first by score (ties keep request order)."""
        return self.rank_shapes(
            [n.name for n in nodes],
            [n.shape for n in nodes],
            [n.price_per_hour_usd for n in nodes],
            devices_per_replica,
            policy,
            top_k,
        )

    def rank_shapes(
        self,
        names: Sequence[str],
        shapes: Sequence[NodeShape],
        prices: Sequence[float | None] | None,
        devices_per_replica: int,
        policy: Policy,
        top_k: int,
    ) -> Ranking:
        """``rank`` over parallel lists (``prices`` None: no node has a price of its own).

        Work per node is a few C-level list and dict operations: every number is computed once
        per (shape, price) group, and the order comes from one sort of per-node integers.
        """
        # Shapes from the label table are shared objects; equal keys from elsewhere merge here.
        # NodeShape hashes by identity, so the shapes themselves are the group keys: no per-node
        # key objects are built (5,000 nodes: one C-level pass to find the ~20 distinct shapes).
        gkeys: Sequence[object] = shapes if prices is None else list(zip(shapes, prices, strict=True))
        distinct = dict.fromkeys(gkeys)
        pairs: list[tuple[NodeShape, float | None]] = (
            [(g, None) for g in distinct] if prices is None else list(distinct)  # type: ignore[arg-type, misc]
        )
        result_of, shape_count = self._results(dict.fromkeys(shape for shape, _ in pairs), devices_per_replica)
        groups: dict[object, Group] = {}
        for g, (shape, price) in zip(distinct, pairs, strict=True):
            found = result_of[shape]
            groups[g] = (found, 0, *self._prices(found, price))
        feasible = [g for g in groups.values() if g[0].feasible]
        fastest = max((g[0].attempt.decode_tokens_per_second for g in feasible if g[0].attempt), default=0.0)
        cheapest = min((g[3] for g in feasible if g[3] is not None), default=None)
        sort_value: dict[object, int] = {}
        for g, (found, _, price, cost) in groups.items():
            score = _score(found, policy, fastest, cheapest, cost) if found.feasible else 0
            groups[g] = (found, score, price, cost)
            sort_value[g] = 100 - score if found.feasible else INFEASIBLE
        if _compiled is not None:
            order, feasible_count = _compiled.order(gkeys, sort_value, INFEASIBLE)
        else:
            order, feasible_count = plain_order(gkeys, sort_value)
        if top_k:
            order = order[:top_k]
        return Ranking(order, names, gkeys, groups, feasible_count, shape_count)

    def _results(
        self, shapes: Iterable[NodeShape], devices_per_replica: int
    ) -> tuple[dict[NodeShape, ShapeResult], int]:
        """Each distinct shape's result (equal keys evaluated once, remembered ones not again), and how many keys."""
        listed = list(shapes)
        keyed = list(dict.fromkeys(s.key for s in listed if s.key))
        by_key: dict[tuple[object, ...], ShapeResult] = {}
        if self.memo is not None and keyed:
            by_key = {k: r for k, r in zip(keyed, self.memo.get_many(keyed), strict=True) if r is not None}
        todo = 0
        if self.max_fresh is not None or self.progress is not None:
            todo = len({s.key or (id(s),) for s in listed}.difference(by_key))
            if self.max_fresh is not None and todo > self.max_fresh:
                raise TooManyShapes(todo, self.max_fresh)
        fresh: list[tuple[tuple[object, ...], ShapeResult]] = []
        out: dict[NodeShape, ShapeResult] = {}
        sized = 0
        for shape in listed:
            key = shape.key or (id(shape),)
            found = by_key.get(key)
            if found is None:
                if self.progress is not None:
                    self.progress(sized, todo)
                sized += 1
                found = by_key[key] = self.evaluate(shape, devices_per_replica)
                if shape.key:
                    fresh.append((key, found))
            out[shape] = found
        if self.memo is not None and fresh:
            self.memo.put_many(fresh)
        return out, len(by_key)

    def _prices(self, s: ShapeResult, node_price: float | None) -> tuple[float | None, float | None]:
        """(node price per hour, cost per million tokens) for a node of this shape."""
        price = node_price
        if price is None and s.per_device_price_usd is not None:
            price = s.per_device_price_usd * s.device_total
        a = s.attempt
        if not (s.feasible and a is not None and price is not None and a.decode_tokens_per_second > 0):
            return price, None
        share = price * a.device_count / max(1, s.device_total)
        concurrency = self.sizer.workload.concurrency
        return price, share / (a.decode_tokens_per_second * concurrency * 3600) * 1e6


def plain_order(keys: Sequence[object], sort_value: Mapping[object, int]) -> tuple[list[int], int]:
    """(request positions by their key's sort value, ties in request order; how many are feasible).

    The reference for the compiled ``_rank_order.order`` (a counting sort, no call per position).
    """
    ranks = list(map(sort_value.__getitem__, keys))
    order = sorted(range(len(ranks)), key=ranks.__getitem__)  # stable: ties keep request order
    return order, len(ranks) - ranks.count(INFEASIBLE)


def _score(s: ShapeResult, policy: Policy, fastest: float, cheapest: float | None, cost: float | None) -> int:
    a = s.attempt
    assert a is not None
    if policy in (Policy.BEST_FIT, Policy.MOST_HEADROOM):
        # Share of the node's usable device memory one replica takes: high means a tight fit.
        used = a.memory_per_device_bytes * a.device_count / max(1, a.usable_bytes * s.available_count)
        value = used if policy is Policy.BEST_FIT else 1.0 - used
    elif policy is Policy.FASTEST:
        value = a.decode_tokens_per_second / fastest if fastest > 0 else 0.0
    else:
        value = cheapest / cost if cost and cheapest is not None else 0.0
    return max(1, min(100, round(100 * value)))


def _sentence(text: str) -> str:
    """The miss as a sentence: capitalised when it starts with one of sizing's lowercase verbs."""
    text = text.strip()
    if text.split(" ", 1)[0] in ("needs", "decode", "time", "speed"):
        text = text[:1].upper() + text[1:]
    return text + ("" if text.endswith(".") else ".")
