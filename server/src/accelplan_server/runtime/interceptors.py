"""One server interceptor for every cross-cutting concern: bearer-token auth, deadlines, metrics, call logs.

A single wrapper keeps the per-call cost to one extra Python frame; each concern
is compiled in only when configured, so a plain server runs its handlers bare.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from accelplan_server.rpc import deadlines
from accelplan_server.runtime.metrics import RpcMetrics
from accelplan_server.runtime.security import TokenAuth

log = logging.getLogger("accelplan.rpc")

Behavior = Callable[[Any, grpc.ServicerContext], Any]

if TYPE_CHECKING:
    _Interceptor = grpc.ServerInterceptor[Any, Any]
else:  # grpc's class is generic only in its stubs
    _Interceptor = grpc.ServerInterceptor


def _unauthenticated(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token (authorization: Bearer <token>)")


class CallGuard(_Interceptor):
    """Checks the token, refuses calls whose deadline cannot be met, records metrics and a debug log line."""

    def __init__(
        self,
        *,
        auth: TokenAuth | None = None,
        metrics: RpcMetrics | None = None,
        log_calls: bool = False,
        guard_deadlines: bool = True,
    ) -> None:
        self.auth = auth
        self.metrics = metrics
        self.log_calls = log_calls
        self.guard_deadlines = guard_deadlines
        self._wrapped: dict[str, tuple[Behavior, grpc.RpcMethodHandler[Any, Any]]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The method's handler, refused without a valid token, wrapped for deadlines, metrics and logs."""
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if self.auth is not None and not self.auth.exempt(method) and not self.auth.allows(details.invocation_metadata):
            if self.metrics is not None:
                self.metrics.observe(method, "UNAUTHENTICATED", 0.0)
            if self.log_calls:
                log.debug("rpc=%s status=UNAUTHENTICATED duration_ms=0.000", method)
            return _replace_behavior(handler, _unauthenticated)
        if handler.unary_unary is None:
            return handler  # reflection's stream: authenticated above, not timed
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler.unary_unary:
            return cached[1]
        wrapped = _replace_behavior(handler, self._wrap(method, handler), request_deserializer=None)
        self._wrapped[method] = (handler.unary_unary, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> Behavior:
        inner = handler.unary_unary
        assert inner is not None
        parse = handler.request_deserializer
        message_type = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
        type_name = message_type.full_name if message_type is not None else "request"
        metrics, log_calls = self.metrics, self.log_calls
        cost = deadlines.cost_model(method) if self.guard_deadlines else None

        def call(raw: Any, context: grpc.ServicerContext) -> Any:
            # Parsing here, not in grpc, turns undecodable bytes into INVALID_ARGUMENT instead of INTERNAL.
            if parse is None:
                request = raw
            else:
                try:
                    request = parse(raw)
                except Exception:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {type_name}")
            if cost is not None:
                deadlines.admit(context, cost(request))
            return inner(request, context)

        if metrics is None and not log_calls:
            return call

        def observed(raw: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                return call(raw, context)
            except BaseException:
                set_code = context.code()  # type: ignore[attr-defined]
                code = set_code.name if set_code is not None else "UNKNOWN"
                raise
            finally:
                seconds = time.perf_counter() - start
                if metrics is not None:
                    metrics.observe(method, code, seconds)
                if log_calls:
                    log.debug("rpc=%s status=%s duration_ms=%.3f", method, code, seconds * 1e3)

        return observed


_KEEP: Any = object()


def _replace_behavior(
    handler: grpc.RpcMethodHandler[Any, Any], behavior: Behavior, *, request_deserializer: Any = _KEEP
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with ``behavior`` in place of its function, keeping its kind and (de)serializers."""
    make = grpc.unary_unary_rpc_method_handler
    if handler.request_streaming and handler.response_streaming:
        make = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        make = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        make = grpc.unary_stream_rpc_method_handler
    return make(
        behavior,
        request_deserializer=handler.request_deserializer if request_deserializer is _KEEP else request_deserializer,
        response_serializer=handler.response_serializer,
    )
