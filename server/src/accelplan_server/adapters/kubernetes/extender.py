"""The scheduler-extender protocol: ExtenderArgs in, ExtenderFilterResult or HostPriorityList out.

kube-scheduler's types (k8s.io/kube-scheduler/extender/v1) have no json tags, so the
keys on the wire are the Go field names (``Pod``, ``Nodes``, ``NodeNames``); Go's
decoder matches keys case-insensitively and so does ``wire.field``. The Pod and the
Nodes inside are ordinary API objects with their usual lower-case keys. Without a
node cache, kube-scheduler builds its view of the passing nodes from the Node
objects the filter returns, so they go back exactly as they came.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from accelplan.v1 import scheduling_pb2
from accelplan_server.adapters.kubernetes.annotations import AnnotationError, pod_workload
from accelplan_server.adapters.kubernetes.nodecache import NodeCache
from accelplan_server.adapters.kubernetes.ranking import RankError, Shape, ShapeRanker
from accelplan_server.adapters.kubernetes.wire import Args, BadArgs, args_from_json, parse_args

log = logging.getLogger("accelplan.extender")

MAX_EXTENDER_PRIORITY = 10
"""kube-scheduler's extenderv1.MaxExtenderPriority: extender scores are 0..10."""
NOT_CACHED = "accelplan: node not in the extender's node cache yet"

_PASS, _FAIL, _UNRESOLVABLE = 0, 1, 2


def _pod_name(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def _args(body: Any, *, keep_nodes: bool = True) -> Args:
    return parse_args(body, keep_nodes=keep_nodes) if isinstance(body, bytes) else args_from_json(body)


class Extender:
    """Answers /filter and /prioritize for kube-scheduler, ranking through RankNodes.

    ``filter`` and ``prioritize`` take the raw request body (or its decoded JSON) and return
    what to encode as the answer (with ``wire.encode``: passing nodes may be msgspec.Raw).
    """

    def __init__(self, ranker: ShapeRanker, cache: NodeCache | None = None) -> None:
        self.ranker = ranker
        self.cache = cache

    def _shapes(self, args: Args) -> list[Shape | None]:
        """Each node's shape; None when a name is unknown to the node cache."""
        if args.shapes is not None:
            return list(args.shapes)
        if self.cache is None:
            raise BadArgs(
                "kube-scheduler sent node names only (nodeCacheCapable: true) but this extender keeps no node "
                "cache: start it with --node-cache, or set nodeCacheCapable: false"
            )
        return self.cache.shapes(args.names)

    def filter(self, body: Any) -> dict[str, Any]:
        """An ExtenderFilterResult: the nodes whose devices hold the pod's workload pass."""
        try:
            args = _args(body)
        except BadArgs as e:
            return _filter_error(str(e))
        try:
            pod = pod_workload(args.pod)
        except AnnotationError as e:
            return _filter_error(f"accelplan: pod {_pod_name(args.pod)}: {e}")
        if pod is None:  # not ours: every node passes untouched
            return _filter_result(args, list(range(len(args.names))), {}, {})
        try:
            shapes = self._shapes(args)
            distinct = _distinct(shapes)
            verdicts = self.ranker.verdicts(pod, (s for s in distinct.values() if s is not None))
        except (BadArgs, RankError) as e:
            return _filter_error(f"accelplan: pod {_pod_name(args.pod)}: {e}")
        outcome: dict[int, tuple[int, str]] = {}
        for key, shape in distinct.items():
            verdict = verdicts.get(shape) if shape is not None else None
            if verdict is None:
                outcome[key] = (_FAIL, NOT_CACHED)
            else:
                kind = _PASS if verdict.feasible else _UNRESOLVABLE if verdict.unresolvable else _FAIL
                outcome[key] = (kind, f"accelplan: {verdict.reason}")
        passed: list[int] = []
        failed: dict[str, str] = {}
        unresolvable: dict[str, str] = {}
        for i, (name, (kind, reason)) in enumerate(zip(args.names, [outcome[id(s)] for s in shapes], strict=True)):
            if kind == _PASS:
                passed.append(i)
            elif kind == _UNRESOLVABLE:
                unresolvable[name] = reason
            else:
                failed[name] = reason
        log.debug("filter %s: %d of %d nodes pass", _pod_name(args.pod), len(passed), len(args.names))
        return _filter_result(args, passed, failed, unresolvable)

    def prioritize(self, body: Any) -> list[dict[str, Any]]:
        """A HostPriorityList: RankNodes' 0-100 score scaled to the extender's 0-10 (0 for pods not ours).

        BadArgs, AnnotationError or RankError when the request cannot be answered.
        """
        args = _args(body, keep_nodes=False)
        pod = pod_workload(args.pod)
        if pod is None:
            return [{"Host": n, "Score": 0} for n in args.names]
        shapes = self._shapes(args)
        distinct = _distinct(shapes)
        verdicts = self.ranker.verdicts(pod, (s for s in distinct.values() if s is not None))
        scores = {key: _extender_score(verdicts.get(s)) if s is not None else 0 for key, s in distinct.items()}
        return [{"Host": n, "Score": scores[id(s)]} for n, s in zip(args.names, shapes, strict=True)]


def _distinct(shapes: list[Shape | None]) -> dict[int, Shape | None]:
    """The shapes by object identity: a few entries, found without hashing each node's label tuple.

    The node cache and the wire decoder hand out one object per shape; equal shapes that are distinct
    objects still get equal verdicts, since ShapeRanker compares by value.
    """
    return {id(s): s for s in shapes}


def _extender_score(verdict: scheduling_pb2.NodeVerdict | None) -> int:
    if verdict is None or not verdict.feasible:
        return 0
    return (verdict.score * MAX_EXTENDER_PRIORITY + 50) // 100


def _filter_result(
    args: Args, passed: list[int], failed: dict[str, str], unresolvable: dict[str, str]
) -> dict[str, Any]:
    nodes = None
    if args.nodes is not None:
        sent = args.nodes
        nodes = {"metadata": {}, "items": [sent[i] for i in passed]}
    names = args.names
    return {
        "Nodes": nodes,
        "NodeNames": [names[i] for i in passed] if args.nodes is None else None,
        "FailedNodes": failed,
        "FailedAndUnresolvableNodes": unresolvable,
        "Error": "",
    }


def _filter_error(message: str) -> dict[str, Any]:
    log.warning("filter error: %s", message)
    return {"Nodes": None, "NodeNames": None, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": message}
