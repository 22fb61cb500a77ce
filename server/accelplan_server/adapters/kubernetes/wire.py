"""ExtenderArgs off the wire, fast: only what the extender reads is decoded.

kube-scheduler without a node cache sends every candidate Node in full (status,
images, ~60 labels each: ~7 KB a node), and expects the passing ones back in full.
Decoding all of that into Python objects costs more than everything else the
extender does, so the body is split with msgspec into raw JSON per node, each
node's name and device labels are decoded from its raw bytes (the other fields
are skipped), and the passing nodes go back as the same bytes (orjson.Fragment).
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
    nodes: list[Any] | None  # the Node objects as sent (dicts or orjson.Fragment), when sent in full


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


_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_NODE = msgspec.json.Decoder(_Node)
_NAMES = msgspec.json.Decoder(list[str] | None)
_NUMBERED_KEYS = tuple(enumerate(DEVICE_KEYS))


def _node_shape(raw: msgspec.Raw, node: _Node) -> Shape:
    values = msgspec.structs.astuple(node.metadata.labels)
    shape = tuple((key, values[i]) for i, key in _NUMBERED_KEYS if values[i] is not None)
    if values[DEVICE_KEYS.index(MIG_STRATEGY)] == "mixed":  # the MIG count labels are not fixed keys: read them all
        labels = orjson.loads(bytes(raw))["metadata"]["labels"]
        shape += mig_counts(labels)
    return shape


def parse_args(body: bytes) -> Args:
    """Args from the request body; BadArgs when it is not an ExtenderArgs."""
    try:
        top = _OBJECT.decode(body)
        pod_raw = field(top, "Pod")
        pod = orjson.loads(bytes(pod_raw)) if pod_raw is not None else None
        if not isinstance(pod, Mapping):
            raise BadArgs("ExtenderArgs.Pod is missing")
        nodes_raw = field(top, "Nodes")
        if nodes_raw is not None and bytes(nodes_raw) != b"null":
            items_raw = field(_OBJECT.decode(nodes_raw), "Items")
            items = _LIST.decode(items_raw) if items_raw is not None and bytes(items_raw) != b"null" else []
            names, shapes, nodes = [], [], []
            for raw in items:
                node = _NODE.decode(raw)
                names.append(node.metadata.name)
                shapes.append(_node_shape(raw, node))
                nodes.append(orjson.Fragment(bytes(raw)))
            return Args(pod, names, shapes, nodes)
        names_raw = field(top, "NodeNames")
        node_names = _NAMES.decode(names_raw) if names_raw is not None else None
        if node_names is None:
            raise BadArgs("ExtenderArgs has neither Nodes nor NodeNames")
        return Args(pod, node_names, None, None)
    except (msgspec.DecodeError, orjson.JSONDecodeError) as e:
        raise BadArgs(f"not an ExtenderArgs: {e}") from None
