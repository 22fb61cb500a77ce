"""Ranking nodes for a pod through RankNodes, once per distinct device shape.

The extender never decides anything itself: it groups the nodes it is sent by
the labels that describe their devices, asks ``SchedulerService.RankNodes``
about one node per group (in-process through the servicer, or over gRPC to a
running server), and copies each group's verdict to its nodes. A cluster of
5,000 nodes holds a handful of shapes, so a filter costs one small RankNodes
call however many nodes there are.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import grpc

from accelplan.v1 import scheduler_service_pb2_grpc, scheduling_pb2
from accelplan_server.adapters.kubernetes.annotations import PodWorkload
from accelplan_server.core.errors import InvalidArgument, NotFound
from accelplan_server.core.scheduling import labels as node_labels

Shape = tuple[tuple[str, str], ...]
"""The labels of a node that RankNodes reads, as (key, value) pairs: nodes with equal shapes get equal verdicts."""

DEVICE_KEYS: tuple[str, ...] = tuple(node_labels.KEYS)
"""The labels RankNodes reads (core.scheduling.labels decides a node's devices from these)."""
MIG_STRATEGY = node_labels.NV_MIG_STRATEGY
_MIG_COUNT_PREFIX = "nvidia.com/mig-"  # nvidia.com/mig-<g>g.<m>gb.count, read under the mixed MIG strategy


def mig_counts(labels: Mapping[str, Any]) -> Shape:
    """The per-profile MIG count labels of a node with the mixed MIG strategy, sorted."""
    return tuple(
        sorted((k, str(v)) for k, v in labels.items() if k.startswith(_MIG_COUNT_PREFIX) and k.endswith(".count"))
    )


def shape_of(labels: Mapping[str, Any]) -> Shape:
    """A node's shape: the labels RankNodes reads, in DEVICE_KEYS order (then MIG counts, sorted)."""
    shape = tuple((k, str(labels[k])) for k in DEVICE_KEYS if k in labels)
    if labels.get(MIG_STRATEGY) == "mixed":
        shape += mig_counts(labels)
    return shape


_NODE_PATH = re.compile(r"^nodes\[(\d+)\]")


class RankError(Exception):
    """RankNodes refused the request: the message says why; ``bad_nodes`` are the indexes of nodes it blamed."""

    def __init__(self, message: str, bad_nodes: Mapping[int, str] | None = None) -> None:
        super().__init__(message)
        self.bad_nodes: Mapping[int, str] = bad_nodes or {}


def _blamed(violations: Iterable[tuple[str, str]]) -> dict[int, str]:
    """Node index to the description of what is wrong with it, from BadRequest field paths ``nodes[i]...``."""
    blamed: dict[int, str] = {}
    for path, description in violations:
        m = _NODE_PATH.match(path)
        if m:
            blamed.setdefault(int(m.group(1)), f"{path.removeprefix(m.group(0)).lstrip('.')}: {description}")
    return blamed


class Ranker(Protocol):
    """Something that answers RankNodes."""

    def rank(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """The response, or RankError."""
        ...


class LocalRanker:
    """RankNodes through the SchedulerServicer in this process: the code ``accelplan serve`` runs for the RPC."""

    def __init__(self, data_dir: str | None = None) -> None:
        from accelplan_server.core.catalog import load_catalog
        from accelplan_server.rpc.scheduler import SchedulerServicer

        self._servicer = SchedulerServicer(load_catalog(Path(data_dir) if data_dir else None))

    def rank(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """The servicer's response; RankError for what it refuses (INVALID_ARGUMENT, NOT_FOUND over gRPC)."""
        try:
            return self._servicer.rank(request)
        except InvalidArgument as e:
            raise RankError(str(e), _blamed((v.field, v.description) for v in e.violations)) from None
        except NotFound as e:
            raise RankError(str(e)) from None


class GrpcRanker:
    """RankNodes over gRPC to a running ``accelplan serve``."""

    def __init__(self, target: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = scheduler_service_pb2_grpc.SchedulerServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None

    def rank(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """The server's response; RankError with its status when the call fails."""
        try:
            response: scheduling_pb2.RankNodesResponse = self._stub.RankNodes(
                request, timeout=self._timeout, metadata=self._metadata
            )
        except grpc.RpcError as e:
            raise RankError(f"{e.code().name}: {e.details()}", _blamed(_violations(e))) from None
        return response

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


def _violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations an INVALID_ARGUMENT status carries."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


Verdicts = dict[Shape, scheduling_pb2.NodeVerdict]


class ShapeRanker:
    """Verdicts per shape for a pod's workload, remembered for the pod's prioritize call (bounded LRU)."""

    def __init__(self, ranker: Ranker, *, remembered: int = 256) -> None:
        self._ranker = ranker
        self._memo: OrderedDict[tuple[bytes, int, int, frozenset[Shape]], Verdicts] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()

    def verdicts(self, pod: PodWorkload, shapes: Iterable[Shape]) -> Verdicts:
        """One verdict per distinct shape."""
        distinct = list(dict.fromkeys(shapes))
        key = (pod.workload.SerializeToString(deterministic=True), pod.devices, int(pod.policy), frozenset(distinct))
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None:
                self._memo.move_to_end(key)
                return hit
        result = self._rank(pod, distinct)
        with self._lock:
            self._memo[key] = result
            while len(self._memo) > self._remembered:
                self._memo.popitem(last=False)
        return result

    def _rank(self, pod: PodWorkload, shapes: list[Shape]) -> Verdicts:
        """Verdicts from RankNodes; shapes whose labels it refuses get that refusal as their verdict."""
        refused: Verdicts = {}
        while True:
            request = scheduling_pb2.RankNodesRequest(
                workload=pod.workload, devices_per_replica=pod.devices, policy=pod.policy
            )
            for i, shape in enumerate(shapes):
                request.nodes.add(name=str(i), labels=dict(shape))
            try:
                response = self._ranker.rank(request) if shapes else scheduling_pb2.RankNodesResponse()
            except RankError as e:
                blamed = {i: why for i, why in e.bad_nodes.items() if i < len(shapes)}
                if not blamed:
                    raise  # the workload itself was refused: every node fails alike
                for i, why in blamed.items():
                    refused[shapes[i]] = scheduling_pb2.NodeVerdict(
                        feasible=False, unresolvable=True, reason=f"RankNodes cannot read the node's labels: {why}"
                    )
                shapes = [s for i, s in enumerate(shapes) if i not in blamed]
                continue
            verdicts = {shapes[int(v.node_name)]: v for v in response.verdicts}
            return {**verdicts, **refused}
