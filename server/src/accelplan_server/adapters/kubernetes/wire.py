"""ExtenderArgs off the wire, fast: only what the extender reads is decoded.

kube-scheduler without a node cache sends every candidate Node in full (status,
images, ~60 labels each: ~7 KB a node), and expects the passing ones back in full.
Decoding all of that into Python objects costs more than everything else the
extender does, so the body is split with msgspec into raw JSON per node, each
node's name and device labels are decoded from its raw bytes (the other fields
are skipped), and the passing nodes go back as the same bytes: msgspec.Raw slices
of the request body, copied out by ``encode`` only for the nodes that pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
import orjson

from accelplan_server.adapters.kubernetes.ranking import DEVICE_KEYS, MIG_STRATEGY, Shape, mig_counts, shape_of


class BadArgs(ValueError):
    """The request is not an ExtenderArgs."""


class Args(NamedTuple):
    """One ExtenderArgs: the pod, and the candidate nodes by name, with shapes and objects when sent in full."""

    pod: Mapping[str, Any]
    names: list[str]
    shapes: list[Shape] | None  # None: node names only (nodeCacheCapable), shapes come from the cache
    nodes: list[Any] | None  # the Node objects as sent (dicts or msgspec.Raw), when sent in full


def field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` matched as Go's encoding/json does: the exact key first, then any case."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


# --- from parsed JSON (tests, and any caller holding dicts) ------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def args_from_json(body: Any) -> Args:
    """Args from a decoded JSON value; BadArgs when it is not an ExtenderArgs."""
    if not isinstance(body, Mapping):
        raise BadArgs("the body is not a JSON object (ExtenderArgs)")
    pod = field(body, "Pod")
    if not isinstance(pod, Mapping):
        raise BadArgs("ExtenderArgs.Pod is missing")
    node_list = field(body, "Nodes")
    if isinstance(node_list, Mapping):
        items = field(node_list, "Items")
        nodes = [n for n in items if isinstance(n, Mapping)] if isinstance(items, list) else []
        metas = [_mapping(n.get("metadata")) for n in nodes]
        return Args(
            pod, [str(m.get("name", "")) for m in metas], [shape_of(_mapping(m.get("labels"))) for m in metas], nodes
        )
    names = field(body, "NodeNames")
    if isinstance(names, list):
        return Args(pod, [str(n) for n in names], None, None)
    raise BadArgs("ExtenderArgs has neither Nodes nor NodeNames")


# --- from the raw body (the HTTP server) ----------------------------------------------------------------

DeviceLabels = msgspec.defstruct(
    "DeviceLabels",
    [(f"k{i}", str | None, msgspec.field(name=key, default=None)) for i, key in enumerate(DEVICE_KEYS)],
)
"""A node's labels, decoding only DEVICE_KEYS (the rest are skipped, not built)."""


class _Meta(msgspec.Struct):
    name: str = ""
    labels: DeviceLabels = msgspec.field(default_factory=DeviceLabels)  # type: ignore[valid-type]


class _Node(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


class _NodeViews(msgspec.Struct):
    items: list[_Node] | None = None


class _NodeRaws(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _ArgsViews(msgspec.Struct):
    Pod: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # Go field names, as kube-scheduler sends them
    Nodes: _NodeViews | None = None
    NodeNames: list[str] | None = None


class _ArgsRaws(msgspec.Struct):
    Nodes: _NodeRaws | None = None


# Two passes over the body: one builds names and device labels (skipping everything else), one slices
# each node's raw JSON. Decoding nodes one by one, or the whole body into objects, costs 2-5x more.
_VIEWS = msgspec.json.Decoder(_ArgsViews)
_RAWS = msgspec.json.Decoder(_ArgsRaws)
_NUMBERED_KEYS = tuple(enumerate(DEVICE_KEYS))
_MIG_INDEX = DEVICE_KEYS.index(MIG_STRATEGY)
_MIG_FIELD = f"k{_MIG_INDEX}"


_MAX_SHAPES = 10_000
_shapes: dict[tuple[str | None, ...], Shape] = {}


def _node_shape(node: _Node, raw: msgspec.Raw | None) -> Shape:
    values = msgspec.structs.astuple(node.metadata.labels)
    if values[_MIG_INDEX] == "mixed":  # the MIG count labels are not fixed keys: read them all
        mixed: Shape = tuple((key, values[i]) for i, key in _NUMBERED_KEYS if values[i] is not None)
        assert raw is not None, "nodes with mixed MIG need their raw JSON"
        return mixed + mig_counts(orjson.loads(bytes(raw))["metadata"]["labels"])
    shape = _shapes.get(values)  # a cluster has few shapes: build each once
    if shape is None:
        shape = tuple((key, values[i]) for i, key in _NUMBERED_KEYS if values[i] is not None)
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        _shapes[values] = shape
    return shape


def _raw_node(value: Any) -> orjson.Fragment:
    if isinstance(value, msgspec.Raw):
        return orjson.Fragment(bytes(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(answer: Any) -> bytes:
    """An answer as JSON; Node objects passed through as msgspec.Raw are written as they came."""
    return orjson.dumps(answer, default=_raw_node)  # orjson: ~2x msgspec's speed for the rest of an answer


def parse_args(body: bytes, *, keep_nodes: bool = True) -> Args:
    """Args from the request body; BadArgs when it is not an ExtenderArgs.

    ``keep_nodes=False`` (prioritize, which answers with names only) skips slicing out each Node.
    """
    try:
        views = _VIEWS.decode(body)
        if not views.Pod or (views.Nodes is None and views.NodeNames is None):
            # Keys in another case (Go's decoder accepts any), or something missing: the general path.
            return args_from_json(orjson.loads(body))
        pod = orjson.loads(bytes(views.Pod))
        if not isinstance(pod, Mapping):
            raise BadArgs("ExtenderArgs.Pod is not an object")
        if views.Nodes is None:
            return Args(pod, list(views.NodeNames or ()), None, None)
        nodes = views.Nodes.items or []
        if not keep_nodes and not any(getattr(n.metadata.labels, _MIG_FIELD) == "mixed" for n in nodes):
            return Args(pod, [n.metadata.name for n in nodes], [_node_shape(n, None) for n in nodes], None)
        raws = (_RAWS.decode(body).Nodes or _NodeRaws()).items or []
        return Args(
            pod,
            [n.metadata.name for n in nodes],
            [_node_shape(n, r) for n, r in zip(nodes, raws, strict=True)],
            raws,
        )
    except (msgspec.DecodeError, orjson.JSONDecodeError) as e:
        raise BadArgs(f"not an ExtenderArgs: {e}") from None
