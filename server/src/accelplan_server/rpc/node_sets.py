"""RankNodes node sets remembered by their wire bytes: the same nodes, asked about pod after pod.

A scheduler ranks one cluster's nodes for one workload after another, so requests differ in
their workload and repeat everything else. Reading and checking 5,000 nodes costs ~2 ms;
recognising their bytes costs a hash of them (~0.3 ms for 0.8 MB). A request whose bytes
start with its workload field (as every protobuf library writes field 1) is split there; the
bytes after it (the nodes and every other field) are the key, and the entry holds what those
bytes read to: the request's other fields, the nodes' names and name fields, their shapes and
prices. Only node sets that read without a violation are kept. Entries are bounded in bytes
(core.cache, NODE_SETS_SHARE of the process budget) and keyed by the servicer too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from accelplan.v1 import scheduling_pb2
from accelplan_server.core.cache import ByteCache
from accelplan_server.core.scheduling.labels import NodeShape
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.rank_wire import WireRequest

NODE_SETS_SHARE = 0.05
"""Share of the process's cache budget (12.8 MiB of the default 256 MiB: some ten sets of 5,000 nodes)."""

MIN_NODES = 64
"""Smaller requests read in well under the time their bytes take to hash and store; they are not kept."""

ENTRY_OVERHEAD_BYTES = 2048
"""The entry's tuples, the header message and the lists' own objects."""

NODE_BYTES = 96
"""Per node beyond its name field's bytes: the name field's bytes object and a slot in each list (measured
at ~64; tests/unit/test_cache_weights.py holds weights above what entries keep alive)."""


class NodeSet(NamedTuple):
    """What a request's bytes after its workload field read to."""

    fields: scheduling_pb2.RankNodesRequest
    """Every field but the workload (the nodes left out: ``wire`` has them)."""
    wire: WireRequest
    """The nodes as read (``rests`` left empty: the shapes below replace them)."""
    shapes: list[NodeShape]
    """Per node: its shape."""
    prices: list[float | None] | None
    """Per node: its own price, or None when no node has one."""
    violations: Violations
    """What is wrong with the nodes: bad fields, unknown names (a set with any is never kept)."""


_SETS: ByteCache[tuple[object, bytes], NodeSet] = ByteCache("node sets", NODE_SETS_SHARE)


def split_workload(raw: bytes) -> tuple[bytes, bytes] | None:
    """(the workload message's bytes, the bytes after its field) when ``raw`` starts with the workload field."""
    if len(raw) < 2 or raw[0] != 0x0A:  # field 1, length-delimited
        return None
    length, shift, i = 0, 0, 1
    while i < len(raw) and i < 6:
        b = raw[i]
        length |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            end = i + length
            return (raw[i:end], raw[end:]) if end <= len(raw) else None
        shift += 7
    return None


def weight(rest: bytes, heads: Sequence[bytes]) -> int:
    """Bytes an entry keyed by ``rest`` with these name fields keeps alive (upper bound)."""
    return ENTRY_OVERHEAD_BYTES + 33 + len(rest) + sum(map(len, heads)) + NODE_BYTES * len(heads)


def get(owner: object, rest: bytes) -> NodeSet | None:
    """The node set ``owner`` kept for these bytes, or None."""
    return _SETS.get((owner, rest))


def put(owner: object, rest: bytes, found: NodeSet) -> None:
    """Keep ``found`` for these bytes (unless it has violations, too few nodes to pay, or outweighs the share)."""
    if len(found.wire.heads) >= MIN_NODES and not (found.violations.items or found.violations.missing):
        _SETS.put((owner, rest), found, weight(rest, found.wire.heads))
