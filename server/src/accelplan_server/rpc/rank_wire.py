"""RankNodes in wire bytes: a request's nodes read, and the ranked verdicts written, with no message per node.

Nodes of one device shape differ only in their name, so per node the work is a few C-level
list operations:

* ``read_request`` parses the request as a view whose ``nodes`` field is ``repeated bytes`` (each
  node's bytes, unparsed). Only the plain form is read so: each node's bytes start with its name
  field (tag 0x0A, a one-byte length: names under 128 bytes, as every protobuf library writes
  them) and name it once. The name fields are sliced off (their UTF-8 checked in one pass over
  them joined; the names are decoded only where a caller asks for one), and the bytes after them
  are the key under which the caller parses nodes of one shape once. Anything else returns None
  and the caller reads the request as a message.
* ``encode_verdicts`` writes RankNodesResponse.verdicts: each verdict's fields but its name are
  serialized once per group by the caller, and every node's verdict is a length prefix, its
  name field and that tail, in field order, so the bytes equal a message serialization's.
* ``encode_ranked`` writes RankNodesResponse.ranked (VERDICT_LAYOUT_GROUPED): RankedNodes.node_names
  is field 1 as the request's names are, so the names are the request's name fields joined.

Per-node steps call ``operator.getitem`` / ``concat``, not ``bytes.__getitem__`` / ``__add__``: those
unbound slot wrappers pack each call's arguments in a tuple, which doubles a step's time.

Tests hold both to the per-message path (tests/unit/test_rank_wire.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from operator import concat, getitem
from typing import Any, NamedTuple, cast, overload

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from accelplan.v1 import scheduling_pb2
from accelplan_server.rpc import limits

try:
    from accelplan_server.rpc import _verdicts as _compiled
except ImportError:  # installed without a C compiler: the plain path
    _compiled = None  # type: ignore[assignment]

MAX_DISTINCT_NODES = 64
"""Distinct node bodies above which (and above 1 in 8 nodes) reading per message is as cheap."""

MAX_LABELS = 16
"""Nodes with more labels than this (a full Kubernetes label set) rarely share their bytes."""

NAME_TAG = 0x0A
"""Field 1, length-delimited: NodeInventory.name and NodeVerdict.node_name alike."""


def _views() -> tuple[Any, Any]:
    """RankNodesRequest with its nodes as bytes, and NodeNames (``repeated string name = 1``).

    The message classes are added once to the default descriptor pool.
    """
    pool = descriptor_pool.Default()
    package = "accelplan_server.rpc.rank_wire"
    try:
        request = pool.FindMessageTypeByName(f"{package}.RequestView")
    except KeyError:
        ft = descriptor_pb2.FieldDescriptorProto
        file = descriptor_pb2.FileDescriptorProto(
            name="accelplan_server/rpc/rank_wire.proto",
            package=package,
            syntax="proto3",
            dependency=[scheduling_pb2.DESCRIPTOR.name],
        )
        view = file.message_type.add()
        scheduling_pb2.RankNodesRequest.DESCRIPTOR.CopyToProto(view)
        view.name = "RequestView"  # every field as in RankNodesRequest, but the nodes left as bytes
        for field in view.field:
            if field.name == "nodes":
                field.type = ft.TYPE_BYTES
                field.ClearField("type_name")
        node_names = file.message_type.add(name="NodeNames")
        node_names.field.add(name="name", number=1, type=ft.TYPE_STRING, label=ft.LABEL_REPEATED)
        pool.Add(file)
        request = pool.FindMessageTypeByName(f"{package}.RequestView")
    names = pool.FindMessageTypeByName(f"{package}.NodeNames")
    return message_factory.GetMessageClass(request), message_factory.GetMessageClass(names)


_RequestView, _NodeNames = _views()
# typeshed types these generically (overloads, Sequence): as used here they take and give bytes.
_slice = cast("Callable[[bytes, slice], bytes]", getitem)
_concat = cast("Callable[[bytes, bytes], bytes]", concat)
_HEAD = [slice(0, 2 + n) for n in range(0x80)]
_REST = [slice(2 + n, None) for n in range(0x80)]


class WireRequest(NamedTuple):
    """A RankNodesRequest in the plain form, its nodes as bytes."""

    header: scheduling_pb2.RankNodesRequest
    """Every field but ``nodes`` (which is empty)."""
    names: Sequence[str]
    """Each node's name, decoded from ``heads`` when read."""
    heads: list[bytes]
    """Each node's name field as on the wire (tag, length, UTF-8): also NodeVerdict's node_name field."""
    rests: list[bytes]
    """Each node's bytes after its name field: equal for nodes that differ only in their name."""
    names_unique: bool
    """No two nodes share a name (every name is also non-empty, valid UTF-8 and within the length cap)."""


class Names(Sequence[str]):
    """Node names read from their name fields on first use (a wire request's are needed only for a few)."""

    def __init__(self, heads: list[bytes]) -> None:
        self._heads = heads

    def __len__(self) -> int:
        return len(self._heads)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [head[2:].decode() for head in self._heads[i]]
        return self._heads[i][2:].decode()


def read_request(raw: bytes) -> WireRequest | None:
    """``raw`` (a RankNodesRequest) read per node as bytes.

    None when it is not the plain form, has no nodes or more than the cap, has many distinct node
    bodies, or does not parse: the message path then reads it (and says what is wrong).
    """
    try:
        view = _RequestView.FromString(raw)
    except DecodeError:
        return None
    bodies: list[bytes] = list(view.nodes)
    n = len(bodies)
    if not 0 < n <= limits.MAX_RANK_NODES:
        return None
    try:
        if bytes(map(getitem, bodies, repeat(0))).count(NAME_TAG) != n:
            return None
        lengths: list[int] = list(map(getitem, bodies, repeat(1)))
    except IndexError:  # a node of fewer than two bytes
        return None
    if max(lengths) >= 0x80 or min(lengths) == 0:  # a longer name, or an empty one (proto3 writes none)
        return None
    heads: list[bytes] = list(map(_slice, bodies, map(_HEAD.__getitem__, lengths)))
    joined = b"".join(heads)
    if len(joined) != 2 * n + sum(lengths):  # a name longer than its node's bytes
        return None
    try:
        joined.decode()  # tags and lengths are ASCII: every name's UTF-8 checked in one pass
    except UnicodeDecodeError:
        return None
    rests: list[bytes] = list(map(_slice, bodies, map(_REST.__getitem__, lengths)))
    distinct = dict.fromkeys(rests)
    if len(distinct) > max(MAX_DISTINCT_NODES, n // 8):
        return None
    try:
        if any(_NodeNames.FromString(rest).name for rest in distinct):
            return None  # a second name field: a parser keeps the last one
    except DecodeError:
        return None
    view.ClearField("nodes")
    header = scheduling_pb2.RankNodesRequest.FromString(view.SerializeToString())
    return WireRequest(header, Names(heads), heads, rests, len(set(heads)) == n)


def worth_reading(request: scheduling_pb2.RankNodesRequest) -> bool:
    """Whether serializing ``request`` for ``read_request`` can pay.

    False when its first, middle or last node carries a full label set: each node's bytes then
    differ, and reading the nodes as messages is cheaper.
    """
    nodes = request.nodes
    n = len(nodes)
    return 0 < n <= limits.MAX_RANK_NODES and all(len(nodes[k].labels) <= MAX_LABELS for k in {0, n // 2, n - 1})


def varint(n: int) -> bytes:
    """The protobuf varint of ``n`` (n >= 0)."""
    if n < len(_VARINTS):
        return _VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS: list[bytes] = []
_VARINTS = [varint(n) for n in range(1 << 14)]
_NAME_PREFIXES = [bytes([NAME_TAG]) + varint(n) for n in range(1 << 11)]
"""A name field's tag and length, by length in bytes (names are at most 256 characters: 1,024 bytes)."""


def name_fields(names: Sequence[str]) -> list[bytes]:
    """Each name as a field-1 string on the wire (tag, length, UTF-8; nothing for an empty one, as proto3 writes it)."""
    joined = "\x00".join(names)
    if names and joined.count("\x00") == len(names) - 1:
        encoded = joined.encode().split(b"\x00")  # one C-level pass when no name holds a NUL
    else:
        encoded = [name.encode() for name in names]
    if encoded and all(encoded) and max(map(len, encoded)) < len(_NAME_PREFIXES):  # C-level passes for the usual names
        return list(map(_concat, map(_NAME_PREFIXES.__getitem__, map(len, encoded)), encoded))
    tag = bytes([NAME_TAG])
    return [tag + varint(len(b)) + b if b else b"" for b in encoded]


def encode_verdicts(
    order: Sequence[int], keys: Sequence[object], heads: Sequence[bytes], tail_of: Mapping[object, bytes]
) -> bytes:
    """RankNodesResponse.verdicts (field 1) on the wire, for the request positions in ``order``.

    ``heads[i]`` is position i's name field; ``tail_of[keys[i]]`` the rest of its verdict
    (fields 2 onwards, serialized once per group). Written by the compiled ``_verdicts`` where it
    is built (one buffer, ~10x faster at 5,000 nodes), else by ``plain_encode_verdicts``.
    """
    if _compiled is not None and type(tail_of) is dict:
        return _compiled.encode_verdicts(order, keys, heads, tail_of)
    return plain_encode_verdicts(order, keys, heads, tail_of)


def plain_encode_verdicts(
    order: Sequence[int], keys: Sequence[object], heads: Sequence[bytes], tail_of: Mapping[object, bytes]
) -> bytes:
    """``encode_verdicts`` in Python: the reference the compiled one is tested against."""
    ordered_heads = list(map(heads.__getitem__, order))
    ordered_keys = list(map(keys.__getitem__, order))
    head_lengths = list(map(len, ordered_heads))
    distinct = set(head_lengths)
    tag = bytes([NAME_TAG])  # RankNodesResponse.verdicts is field 1 too
    prefix_of = {key: {h: tag + varint(h + len(tail)) for h in distinct} for key, tail in tail_of.items()}
    prefixes = map(getitem, map(prefix_of.__getitem__, ordered_keys), head_lengths)
    tails = map(tail_of.__getitem__, ordered_keys)
    return b"".join(chain.from_iterable(zip(prefixes, ordered_heads, tails, strict=True)))


RANKED_TAG = 0x32
"""RankNodesResponse.ranked: field 6, length-delimited."""

INDEXES_TAG = 0x12
"""RankedNodes.verdict_indexes: field 2, packed."""

RANKED_VERDICTS_TAG = 0x1A
"""RankedNodes.verdicts: field 3."""


def encode_ranked(
    order: Sequence[int], keys: Sequence[object], heads: Sequence[bytes], tail_of: Mapping[object, bytes]
) -> bytes:
    """RankNodesResponse.ranked (field 6) on the wire, for the request positions in ``order``.

    ``heads[i]`` is position i's name field; ``tail_of[keys[i]]`` its verdict without the name.
    Equal verdicts are listed once, in the order their first node appears.
    """
    tails = list(map(tail_of.__getitem__, map(keys.__getitem__, order)))
    index = {tail: i for i, tail in enumerate(dict.fromkeys(tails))}
    indexes = list(map(index.__getitem__, tails))
    packed = bytes(indexes) if len(index) <= 0x80 else b"".join(map(varint, indexes))
    return _ranked(b"".join(map(heads.__getitem__, order)), packed, index)


def names_field(names: Sequence[str]) -> bytes:
    """``names`` as repeated field-1 strings on the wire (RankedNodes.node_names for a run of nodes)."""
    return bytes(_NodeNames(name=names).SerializeToString())


def encode_ranked_runs(runs: Sequence[tuple[bytes, int, bytes]]) -> bytes:
    """``encode_ranked`` from runs of consecutive ranked nodes that share a verdict.

    Each run is (its nodes' names as ``names_field`` bytes, how many nodes, their verdict without a name).
    """
    index: dict[bytes, int] = {}
    for _, _, tail in runs:
        index.setdefault(tail, len(index))
    one_byte = len(index) <= 0x80
    packed = b"".join((bytes([index[tail]]) if one_byte else varint(index[tail])) * count for _, count, tail in runs)
    return _ranked(b"".join(names for names, _, _ in runs), packed, index)


def _ranked(names: bytes, packed_indexes: bytes, verdicts: Iterable[bytes]) -> bytes:
    """RankNodesResponse.ranked from its three fields' contents, in field order."""
    parts = [names]
    if packed_indexes:
        parts += [bytes([INDEXES_TAG]), varint(len(packed_indexes)), packed_indexes]
    for verdict in verdicts:
        parts += [bytes([RANKED_VERDICTS_TAG]), varint(len(verdict)), verdict]
    body = b"".join(parts)
    return bytes([RANKED_TAG]) + varint(len(body)) + body
