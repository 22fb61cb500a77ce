"""A typed client for accelplan.v1.PlannerService that hides channel set-up and decodes errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from accelplan.v1 import (
    cost_pb2,
    hardware_pb2,
    models_pb2,
    planner_service_pb2_grpc,
    planning_pb2,
    quantization_pb2,
    scheduler_service_pb2_grpc,
    scheduling_pb2,
    training_pb2,
)

Response = TypeVar("Response")

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT_SECONDS = 10.0

# round_robin over every address the target resolves to (a headless Service's
# pod IPs, or "ipv4:10.0.0.1:50051,10.0.0.2:50051"), so calls spread across
# replicas instead of riding one HTTP/2 connection to one of them; up to 3
# attempts of a PlannerService call that fails with UNAVAILABLE (every RPC is a
# side-effect-free computation, so retrying is safe).
DEFAULT_SERVICE_CONFIG: Mapping[str, Any] = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "accelplan.v1.PlannerService"}, {"service": "accelplan.v1.SchedulerService"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field named by the server's google.rpc.BadRequest."""

    field: str
    description: str


class PlannerError(Exception):
    """A failed call: the gRPC status code, its message and any field violations."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: Sequence[FieldViolation] = (),
        *,
        reason: str = "",
        name: str = "",
        suggestions: Sequence[str] = (),
    ) -> None:
        self.code = code
        self.message = message
        self.violations = list(violations)
        self.reason = reason
        """google.rpc.ErrorInfo.reason: UNKNOWN_MODEL or UNKNOWN_SKU for a name the catalogue lacks."""
        self.name = name
        """The unknown name."""
        self.suggestions = list(suggestions)
        """The closest known names."""
        super().__init__(f"{code.name}: {message}")

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> PlannerError:
        """Decode the status and the grpc-status-details-bin trailer of a failed call."""
        call: Any = error
        violations: list[FieldViolation] = []
        reason, name, suggestions = "", "", list[str]()
        status = rpc_status.from_call(call)
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, name = info.reason, info.metadata.get("name", "")
                    suggestions = [x for x in info.metadata.get("suggestions", "").split(",") if x]
                elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                    failure = error_details_pb2.PreconditionFailure()
                    detail.Unpack(failure)
                    violations.extend(FieldViolation(v.subject, v.description) for v in failure.violations)
        return cls(call.code(), call.details() or "", violations, reason=reason, name=name, suggestions=suggestions)


class _BearerToken(grpc.AuthMetadataPlugin):
    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        callback(self._metadata, None)


class PlannerClient:
    """Calls PlannerService with a per-call deadline; raises PlannerError on failure.

    Plaintext by default; pass ``tls=True`` (optionally with ``root_certificates``
    and a client key pair for mutual TLS) and ``token`` for bearer-token auth.
    ``service_config`` replaces DEFAULT_SERVICE_CONFIG (``None`` sends none);
    ``options`` are extra channel arguments and win over it.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        tls: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        token: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
        service_config: Mapping[str, Any] | None = DEFAULT_SERVICE_CONFIG,
    ) -> None:
        self.timeout = timeout
        if service_config is not None:
            defaults = [("grpc.service_config", json.dumps(service_config)), ("grpc.enable_retries", 1)]
            given = {name for name, _ in options}
            options = [*(o for o in defaults if o[0] not in given), *options]
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            if token:
                creds = grpc.composite_channel_credentials(creds, grpc.metadata_call_credentials(_BearerToken(token)))
            self._channel = grpc.secure_channel(target, creds, options=options)
            self._metadata: tuple[tuple[str, str], ...] = ()
        else:
            self._channel = grpc.insecure_channel(target, options=options)
            self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.stub = planner_service_pb2_grpc.PlannerServiceStub(self._channel)
        self.scheduler = scheduler_service_pb2_grpc.SchedulerServiceStub(self._channel)
        """SchedulerService on the same channel (RankNodes, RightSize)."""
        self._rank_bytes = self._channel.unary_unary(
            "/accelplan.v1.SchedulerService/RankNodes",
            request_serializer=None,  # rank_prepared sends bytes it composed
            response_deserializer=scheduling_pb2.RankNodesResponse.FromString,
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> PlannerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., Response], request: Any, timeout: float | None) -> Response:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise PlannerError.from_rpc_error(e) from None

    def call(self, rpc: str, request: Message, *, timeout: float | None = None) -> Message:
        """Call any PlannerService or SchedulerService method by name (``"PlanSharding"``, ``"RankNodes"``)."""
        method = None if rpc.startswith("_") else getattr(self.stub, rpc, None) or getattr(self.scheduler, rpc, None)
        if method is None:
            raise ValueError(f"neither PlannerService nor SchedulerService has a method {rpc!r}")
        response: Message = self._call(method, request, timeout)
        return response

    def list_quantization_levels(
        self, *, timeout: float | None = None
    ) -> quantization_pb2.ListQuantizationLevelsResponse:
        """Every quantization level."""
        return self._call(self.stub.ListQuantizationLevels, quantization_pb2.ListQuantizationLevelsRequest(), timeout)

    def resolve_quantization_level(
        self, request: quantization_pb2.ResolveQuantizationLevelRequest, *, timeout: float | None = None
    ) -> quantization_pb2.QuantizationLevelInfo:
        """A level by value, bits or name."""
        return self._call(self.stub.ResolveQuantizationLevel, request, timeout)

    def estimate_memory(
        self, request: planning_pb2.EstimateMemoryRequest, *, timeout: float | None = None
    ) -> planning_pb2.MemoryEstimate:
        """Inference memory."""
        return self._call(self.stub.EstimateMemory, request, timeout)

    def suggest_quantization(
        self, request: planning_pb2.SuggestQuantizationRequest, *, timeout: float | None = None
    ) -> planning_pb2.SuggestQuantizationResponse:
        """The precision that fits a fleet."""
        return self._call(self.stub.SuggestQuantization, request, timeout)

    def plan_sharding(
        self, request: planning_pb2.PlanShardingRequest, *, timeout: float | None = None
    ) -> planning_pb2.ShardingPlan:
        """A sharding plan."""
        return self._call(self.stub.PlanSharding, request, timeout)

    def estimate_training_memory(
        self, request: training_pb2.EstimateTrainingMemoryRequest, *, timeout: float | None = None
    ) -> training_pb2.EstimateTrainingMemoryResponse:
        """Fine-tuning memory."""
        return self._call(self.stub.EstimateTrainingMemory, request, timeout)

    def recommend_instances(
        self, request: cost_pb2.RecommendInstancesRequest, *, timeout: float | None = None
    ) -> cost_pb2.RecommendInstancesResponse:
        """Cloud instances, cheapest first."""
        return self._call(self.stub.RecommendInstances, request, timeout)

    def list_models(
        self, request: models_pb2.ListModelsRequest | None = None, *, timeout: float | None = None
    ) -> models_pb2.ListModelsResponse:
        """A page of the model catalogue."""
        return self._call(self.stub.ListModels, request or models_pb2.ListModelsRequest(), timeout)

    def get_model(self, model_id: str, *, timeout: float | None = None) -> models_pb2.ModelInfo:
        """One catalogue model."""
        return self._call(self.stub.GetModel, models_pb2.GetModelRequest(model_id=model_id), timeout).model

    def find_compatible_models(
        self, request: models_pb2.FindCompatibleModelsRequest, *, timeout: float | None = None
    ) -> models_pb2.FindCompatibleModelsResponse:
        """Catalogue models that fit a budget."""
        return self._call(self.stub.FindCompatibleModels, request, timeout)

    def filter_accelerators(
        self, request: hardware_pb2.FilterAcceleratorsRequest, *, timeout: float | None = None
    ) -> hardware_pb2.FilterAcceleratorsResponse:
        """Fleet devices meeting a requirement."""
        return self._call(self.stub.FilterAccelerators, request, timeout)

    def rank_nodes(
        self, request: scheduling_pb2.RankNodesRequest, *, timeout: float | None = None
    ) -> scheduling_pb2.RankNodesResponse:
        """SchedulerService.RankNodes: which nodes can serve a workload, best first.

        With ``verdict_layout=VERDICT_LAYOUT_GROUPED`` the verdicts come in ``response.ranked``;
        ``node_verdicts(response)`` lists them per node in either layout.
        """
        return self._call(self.scheduler.RankNodes, request, timeout)

    def rank_prepared(
        self, workload: scheduling_pb2.Workload | None, nodes: PreparedNodes, *, timeout: float | None = None
    ) -> scheduling_pb2.RankNodesResponse:
        """RankNodes for ``workload`` over nodes serialized once (``prepare_nodes``).

        The server reads the request ``prepare_nodes`` was given with its workload set to this one.
        """
        body = nodes.body
        if workload is not None:
            w = workload.SerializeToString(deterministic=True)
            body = b"\x0a" + _varint(len(w)) + w + body  # field 1, first: where the server looks for it
        response: scheduling_pb2.RankNodesResponse = self._call(self._rank_bytes, body, timeout)
        return response

    def right_size(
        self, request: scheduling_pb2.RightSizeRequest, *, timeout: float | None = None
    ) -> scheduling_pb2.RightSizeResponse:
        """SchedulerService.RightSize: devices, counts and precisions that serve a workload, with artifacts."""
        return self._call(self.scheduler.RightSize, request, timeout)


@dataclass(frozen=True)
class PreparedNodes:
    """A RankNodesRequest without its workload, serialized once (``prepare_nodes``).

    A scheduler ranks the same nodes for pod after pod: ``PlannerClient.rank_prepared`` puts each
    pod's Workload in front of these bytes, so a call serializes one small message instead of every
    node, and the server, which keeps node sets by the bytes after the workload field, reads the
    nodes once. Prepare again when the nodes change.
    """

    body: bytes


def prepare_nodes(request: scheduling_pb2.RankNodesRequest) -> PreparedNodes:
    """``request``'s fields but its workload (left out when set), serialized deterministically."""
    rest = scheduling_pb2.RankNodesRequest()
    rest.CopyFrom(request)
    rest.ClearField("workload")
    return PreparedNodes(rest.SerializeToString(deterministic=True))


def _varint(n: int) -> bytes:
    """The protobuf varint of ``n`` (n >= 0)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def node_verdicts(response: scheduling_pb2.RankNodesResponse) -> list[scheduling_pb2.NodeVerdict]:
    """A RankNodes answer's verdicts one per ranked node, best first, in either verdict layout."""
    if not response.HasField("ranked"):
        return list(response.verdicts)
    ranked = response.ranked
    out = []
    for name, index in zip(ranked.node_names, ranked.verdict_indexes, strict=True):
        verdict = scheduling_pb2.NodeVerdict()
        verdict.CopyFrom(ranked.verdicts[index])
        verdict.node_name = name
        out.append(verdict)
    return out
