"""Ranking nodes for a pod through RankNodes, once per distinct device shape.

The extender never decides anything itself: it groups the nodes it is sent by
the labels that describe their devices, asks ``SchedulerService.RankNodes``
about one node per group (in-process through the servicer, or over gRPC to a
running server), and copies each group's verdict to its nodes. A cluster of
5,000 nodes holds a handful of shapes, so a filter costs one small RankNodes
call however many nodes there are.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import grpc

from accelplan.v1 import scheduler_service_pb2_grpc, scheduling_pb2
from accelplan_server.adapters.kubernetes.annotations import PodWorkload

Shape = tuple[tuple[str, str], ...]
"""The device-describing labels of a node, sorted: nodes with equal shapes get equal verdicts."""

# Label domains whose labels may describe a node's accelerators (GPU Feature Discovery, AMD's node
# labeller, Intel's and Habana's device plugins, AWS Neuron, accelplan's own `accelplan detect --labels`).
_DEVICE_DOMAINS = ("nvidia.com", "amd.com", "habana.ai", "intel.com", "aws.amazon.com", "accelplan.dev")
# Single keys outside those domains: GKE's accelerator and TPU labels, the instance type (prices).
_DEVICE_KEY_PREFIXES = (
    "cloud.google.com/gke-tpu",
    "cloud.google.com/gke-accelerator",
    "node.kubernetes.io/instance-type",
)
_MAX_KNOWN_KEYS = 100_000
_known_keys: dict[str, bool] = {}


def device_label(key: str) -> bool:
    """Whether a label key may describe the node's devices (and so must be sent to RankNodes)."""
    known = _known_keys.get(key)
    if known is not None:
        return known
    domain, slash, _ = key.partition("/")
    relevant = bool(slash) and (
        any(domain == d or domain.endswith("." + d) for d in _DEVICE_DOMAINS) or key.startswith(_DEVICE_KEY_PREFIXES)
    )
    if len(_known_keys) < _MAX_KNOWN_KEYS:  # label keys are few; bound it anyway
        _known_keys[key] = relevant
    return relevant


def shape_of(labels: Mapping[str, Any]) -> Shape:
    """A node's shape: its device-describing labels, sorted."""
    return tuple(sorted((k, str(v)) for k, v in labels.items() if device_label(k)))


class RankError(Exception):
    """RankNodes refused the workload (bad or unknown model, bad annotation values): the message says why."""


class Ranker(Protocol):
    """Something that answers RankNodes."""

    def rank(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """The response, or RankError."""
        ...


class _Aborted(Exception):
    pass


class _LocalContext:
    """The part of grpc.ServicerContext a servicer uses, for calls made in-process."""

    def __init__(self) -> None:
        self._code: grpc.StatusCode | None = None
        self._details = ""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details
        raise _Aborted(details)

    def abort_with_status(self, status: Any) -> None:
        self.abort(status.code, status.details)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return True

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def invocation_metadata(self) -> tuple[()]:
        return ()


class LocalRanker:
    """RankNodes through the SchedulerServicer in this process: the same code the gRPC server runs."""

    def __init__(self, data_dir: str | None = None) -> None:
        from pathlib import Path

        from accelplan_server.core.catalog import load_catalog
        from accelplan_server.rpc.scheduler import SchedulerServicer

        self._servicer = SchedulerServicer(load_catalog(Path(data_dir) if data_dir else None))

    def rank(self, request: scheduling_pb2.RankNodesRequest) -> scheduling_pb2.RankNodesResponse:
        """The servicer's response; RankError with the status it aborted with."""
        context = _LocalContext()
        try:
            response: scheduling_pb2.RankNodesResponse = self._servicer.RankNodes(request, context)
        except _Aborted:
            code = context.code()
            raise RankError(f"{code.name if code is not None else 'ERROR'}: {context.details()}") from None
        return response


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
            raise RankError(f"{e.code().name}: {e.details()}") from None
        return response

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


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
        request = scheduling_pb2.RankNodesRequest(
            workload=pod.workload, devices_per_replica=pod.devices, policy=pod.policy
        )
        for i, shape in enumerate(distinct):
            request.nodes.add(name=f"shape-{i}", labels=dict(shape))
        response = self._ranker.rank(request)
        by_name = {v.node_name: v for v in response.verdicts}
        result = {shape: by_name[f"shape-{i}"] for i, shape in enumerate(distinct) if f"shape-{i}" in by_name}
        with self._lock:
            self._memo[key] = result
            while len(self._memo) > self._remembered:
                self._memo.popitem(last=False)
        return result
