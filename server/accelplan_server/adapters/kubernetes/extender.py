"""The scheduler-extender protocol: ExtenderArgs in, ExtenderFilterResult or HostPriorityList out.

kube-scheduler's types (k8s.io/kube-scheduler/extender/v1) have no json tags, so the
keys on the wire are the Go field names (``Pod``, ``Nodes``, ``NodeNames``); Go's
decoder matches keys case-insensitively and so does ``field``. The Pod and the
Nodes inside are ordinary API objects with their usual lower-case keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from accelplan_server.adapters.kubernetes.annotations import AnnotationError, PodWorkload, pod_workload
from accelplan_server.adapters.kubernetes.nodecache import NodeCache
from accelplan_server.adapters.kubernetes.ranking import RankError, Shape, ShapeRanker, shape_of

log = logging.getLogger("accelplan.extender")

MAX_EXTENDER_PRIORITY = 10
"""kube-scheduler's extenderv1.MaxExtenderPriority: extender scores are 0..10."""


def field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` matched as Go's encoding/json does: the exact key first, then any case."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pod_name(pod: Mapping[str, Any]) -> str:
    meta = _mapping(pod.get("metadata"))
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"


class BadArgs(ValueError):
    """The request is not an ExtenderArgs."""


class _Args:
    """One ExtenderArgs, parsed."""

    def __init__(self, args: Any) -> None:
        if not isinstance(args, Mapping):
            raise BadArgs("the body is not a JSON object (ExtenderArgs)")
        pod = field(args, "Pod")
        if not isinstance(pod, Mapping):
            raise BadArgs("ExtenderArgs.Pod is missing")
        self.pod: Mapping[str, Any] = pod
        node_list = field(args, "Nodes")
        self.node_list: Mapping[str, Any] | None = node_list if isinstance(node_list, Mapping) else None
        self.nodes: list[Mapping[str, Any]] | None = None
        if self.node_list is not None:
            items = field(self.node_list, "Items")
            self.nodes = [n for n in items if isinstance(n, Mapping)] if isinstance(items, list) else []
        names = field(args, "NodeNames")
        self.node_names: list[str] | None = [str(n) for n in names] if isinstance(names, list) else None
        if self.nodes is None and self.node_names is None:
            raise BadArgs("ExtenderArgs has neither Nodes nor NodeNames")


def _node_name(node: Mapping[str, Any]) -> str:
    return str(_mapping(node.get("metadata")).get("name", ""))


def _node_labels(node: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(node.get("metadata")).get("labels"))


class Extender:
    """Answers /filter and /prioritize for kube-scheduler, ranking through RankNodes."""

    def __init__(self, ranker: ShapeRanker, cache: NodeCache | None = None) -> None:
        self.ranker = ranker
        self.cache = cache

    def _shapes(self, args: _Args) -> tuple[list[str], list[Shape | None]]:
        """Each node's name and shape; None when a name is unknown to the node cache."""
        if args.nodes is not None:
            return [_node_name(n) for n in args.nodes], [shape_of(_node_labels(n)) for n in args.nodes]
        names = args.node_names or []
        if self.cache is None:
            raise BadArgs(
                "kube-scheduler sent node names only (nodeCacheCapable: true) but this extender keeps no node "
                "cache: start it with --node-cache, or set nodeCacheCapable: false"
            )
        return names, self.cache.shapes(names)

    def _verdicts(self, pod: PodWorkload, shapes: list[Shape | None]) -> dict[Shape, Any]:
        return self.ranker.verdicts(pod, (s for s in shapes if s is not None))

    def filter(self, body: Any) -> dict[str, Any]:
        """An ExtenderFilterResult: the nodes whose devices hold the pod's workload pass."""
        try:
            args = _Args(body)
        except BadArgs as e:
            return _filter_error(str(e))
        try:
            pod = pod_workload(args.pod)
        except AnnotationError as e:
            return _filter_error(f"accelplan: pod {_pod_name(args.pod)}: {e}")
        if pod is None:  # not ours: every node passes untouched
            return _filter_result(args.node_list, args.node_names, {}, {})
        try:
            names, shapes = self._shapes(args)
            verdicts = self._verdicts(pod, shapes)
        except (BadArgs, RankError) as e:
            return _filter_error(f"accelplan: pod {_pod_name(args.pod)}: {e}")
        failed: dict[str, str] = {}
        unresolvable: dict[str, str] = {}
        passed: list[int] = []
        for i, (name, shape) in enumerate(zip(names, shapes, strict=True)):
            verdict = verdicts.get(shape) if shape is not None else None
            if verdict is None:
                failed[name] = "accelplan: node not in the extender's node cache yet"
            elif verdict.feasible:
                passed.append(i)
            elif verdict.unresolvable:
                unresolvable[name] = f"accelplan: {verdict.reason}"
            else:
                failed[name] = f"accelplan: {verdict.reason}"
        node_list = None
        if args.node_list is not None and args.nodes is not None:
            node_list = {**args.node_list, field_key(args.node_list, "items"): [args.nodes[i] for i in passed]}
        passed_names = [names[i] for i in passed] if args.node_names is not None else None
        log.debug("filter %s: %d of %d nodes pass", _pod_name(args.pod), len(passed), len(names))
        return _filter_result(node_list, passed_names, failed, unresolvable)

    def prioritize(self, body: Any) -> list[dict[str, Any]]:
        """A HostPriorityList: RankNodes' 0-100 score scaled to the extender's 0-10 (0 for pods not ours)."""
        args = _Args(body)  # BadArgs: the caller answers 400
        names: list[str] = (
            [_node_name(n) for n in args.nodes] if args.nodes is not None else list(args.node_names or [])
        )
        pod = pod_workload(args.pod)  # AnnotationError: the caller answers 400 (the filter said so already)
        if pod is None:
            return [{"Host": n, "Score": 0} for n in names]
        names, shapes = self._shapes(args)
        verdicts = self._verdicts(pod, shapes)
        result = []
        for name, shape in zip(names, shapes, strict=True):
            verdict = verdicts.get(shape) if shape is not None else None
            score = (
                (verdict.score * MAX_EXTENDER_PRIORITY + 50) // 100 if verdict is not None and verdict.feasible else 0
            )
            result.append({"Host": name, "Score": score})
        return result


def field_key(obj: Mapping[str, Any], name: str) -> str:
    """The key ``field`` would read ``name`` from (so an answer keeps the sender's spelling)."""
    if name in obj:
        return name
    lowered = name.lower()
    return next((k for k in obj if isinstance(k, str) and k.lower() == lowered), name)


def _filter_result(
    nodes: Mapping[str, Any] | None,
    node_names: list[str] | None,
    failed: dict[str, str],
    unresolvable: dict[str, str],
) -> dict[str, Any]:
    return {
        "Nodes": nodes,
        "NodeNames": node_names,
        "FailedNodes": failed,
        "FailedAndUnresolvableNodes": unresolvable,
        "Error": "",
    }


def _filter_error(message: str) -> dict[str, Any]:
    log.warning("filter error: %s", message)
    return {"Nodes": None, "NodeNames": None, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": message}
