"""How each call is run on the grpc.aio server: token auth, request parsing, deadline admission, lanes, metrics, logs.

The planner's handlers (rpc/planner.py) are synchronous and take microseconds
for all but fleet-sized requests, so each call goes one of three ways, decided
by rpc/cost.py's estimate from the request before any work starts:

* inline, on the event loop: cheap calls (no thread hop, nothing to queue);
* the heavy lane (runtime/lanes.py): a call estimated at or above the lane's
  threshold runs in a separate process, so its GIL never stalls the loop, and is
  refused with RESOURCE_EXHAUSTED plus a retry hint when the lane's queue is full;
* a thread: handlers wrapped by extra (sync) interceptors given to
  ``serve.start`` (tests, instrumentation), which may block.

Waiting for a request body is awaited by the event loop, so a client that sends
HEADERS and nothing else holds no thread. Token auth is one aio interceptor in
front of every service (planner, health, reflection) when a token is configured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
from google.protobuf.message import DecodeError

from accelplan_server.rpc import cost, deadlines
from accelplan_server.rpc.status import Offload
from accelplan_server.runtime.context import Aborted, HandlerContext
from accelplan_server.runtime.fleet_shapes import FleetShapes
from accelplan_server.runtime.lanes import HeavyLane, retry_status
from accelplan_server.runtime.metrics import RpcMetrics
from accelplan_server.runtime.security import TokenAuth

log = logging.getLogger("accelplan.rpc")

PLANNER_PREFIX = deadlines.SERVICE_PREFIX
UNAUTHENTICATED_MESSAGE = "missing or wrong bearer token (authorization: Bearer <token>)"

AsyncBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
WireMethod = Callable[[bytes, Any], bytes]
"""A method answered from the request's wire bytes to the response's (DecodeError for bytes that do not parse)."""


class _Details(NamedTuple):
    """grpc.HandlerCallDetails for applying sync interceptors once per method."""

    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


@dataclass
class CallTracker:
    """Planner calls in progress (method, start time), so a drain can say which ones it cut."""

    active: dict[int, tuple[str, float]] = field(default_factory=dict)
    cut_after: float = float("inf")
    """Monotonic time the drain's grace ends: calls cancelled from then on were cut by the server."""
    cut: list[tuple[str, float]] = field(default_factory=list)
    """(method, seconds it ran) of each call cut at the end of the grace."""
    _next: int = 0

    def enter(self, method: str) -> int:
        """Record a call starting; returns its key."""
        self._next += 1
        self.active[self._next] = (method, time.monotonic())
        return self._next

    def leave(self, key: int) -> None:
        """Record a call ending."""
        self.active.pop(key, None)

    def cancelled(self, key: int) -> None:
        """Record a call cancelled: by its client, or by the server when the grace has run out."""
        entry = self.active.get(key)
        now = time.monotonic()
        if entry is not None and now >= self.cut_after:
            self.cut.append((entry[0], now - entry[1]))


TRACKED_ANSWER_BYTES = 64 * 1024
"""Answers at least this large count against their connection's budget (smaller ones fit the peer's
initial HTTP/2 window, so at most one window per stream, bounded by the stream limit, can be held)."""


@dataclass
class ConnectionBudget:
    """Bytes of answers each connection has been given but has not yet taken (its flow-control window closed).

    A call's answer is counted from when it is handed to gRPC until the call
    completes, which for a large answer is when the peer's flow-control window
    has let the last byte out. A client that never reads therefore holds its
    budget, and its further large answers are refused instead of pinned.
    """

    limit_bytes: int
    heavy_calls: int = 16
    """Heavy-lane calls one connection may have in flight: their answers (up to 4 MiB each) come back
    whole before they can be counted, so this bounds what a connection's calls in progress can pin."""
    held: dict[str, int] = field(default_factory=dict)
    heavy: dict[str, int] = field(default_factory=dict)

    def take(self, peer: str, size: int) -> bool:
        """Count ``size`` more bytes for ``peer``; False (nothing counted) when over the limit."""
        now = self.held.get(peer, 0)
        if now + size > self.limit_bytes:
            return False
        self.held[peer] = now + size
        return True

    def give(self, peer: str, size: int) -> None:
        """The peer has taken ``size`` bytes (or its call ended)."""
        left = self.held.get(peer, 0) - size
        if left > 0:
            self.held[peer] = left
        else:
            self.held.pop(peer, None)


@dataclass
class CallGuard:
    """Builds the async handlers of the planner service and the auth interceptor (see the module docstring)."""

    auth: TokenAuth | None = None
    metrics: RpcMetrics | None = None
    log_calls: bool = False
    guard_deadlines: bool = True
    lane: HeavyLane | None = None
    budget: ConnectionBudget | None = None
    fleet_shapes: FleetShapes = field(default_factory=FleetShapes)
    layers_of: cost.LayersOf | None = None
    catalogue_skus: int = 0
    """Accelerators in the served catalogue (RightSize's cost grows with them); 0 leaves RightSize unpriced."""
    thread_pool: Executor | None = None
    tracker: CallTracker = field(default_factory=CallTracker)

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Metrics and the per-call debug line for one finished call."""
        if self.metrics is not None:
            self.metrics.observe(method, code, seconds)
        if self.log_calls:
            log.debug("rpc=%s status=%s duration_ms=%.3f", method, code, seconds * 1e3)

    def interceptors(self) -> list[Any]:
        """The aio interceptors to install: token auth when a token is configured."""
        return [_AuthInterceptor(self)] if self.auth is not None else []

    def planner_handlers(
        self,
        sync_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]],
        service: str,
        extra: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
        wire: Mapping[str, WireMethod] | None = None,
    ) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """Async handlers for the sync servicer's methods; ``extra`` sync interceptors are applied once per method.

        ``wire`` names methods the servicer also answers from the request's wire bytes to the
        response's (no parse or serialization here); they are used where nothing needs the parsed
        request first: no ``extra`` interceptor and no cost estimate.
        """
        out: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for name, handler in sync_handlers.items():
            method = f"/{service}/{name}"
            wrapped: grpc.RpcMethodHandler[Any, Any] | None = handler
            for interceptor in reversed(extra):
                inner = wrapped

                def continuation(_details: Any, _h: Any = inner) -> Any:
                    return _h

                wrapped = interceptor.intercept_service(continuation, _Details(method, ()))
            assert wrapped is not None and wrapped.unary_unary is not None
            # Registered as client-streaming (the same bytes on the wire as unary) so the handler reads the
            # request itself: aio drops a unary call whose stream ends without a whole message and never
            # answers it; read here, such a call gets INVALID_ARGUMENT.
            out[name] = grpc.stream_unary_rpc_method_handler(
                self._behavior(
                    name,
                    method,
                    handler,
                    wrapped.unary_unary,
                    blocking=wrapped is not handler,
                    wire=(wire or {}).get(name),
                ),
                request_deserializer=None,
                response_serializer=None,
            )
        return out

    def _behavior(
        self,
        name: str,
        method: str,
        handler: grpc.RpcMethodHandler[Any, Any],
        inner: Callable[[Any, Any], Any],
        *,
        blocking: bool,
        wire: WireMethod | None = None,
    ) -> AsyncBehavior:
        parse = handler.request_deserializer
        assert parse is not None
        message_type = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
        type_name = message_type.full_name if message_type is not None else "request"
        estimate = deadlines.cost_model(method, self.layers_of, self.catalogue_skus)
        wire_call = wire if wire is not None and not blocking and estimate is None else None
        shapes = self.fleet_shapes
        message_fields = getattr(message_type, "fields_by_name", {})
        fleet_field = message_fields["fleet"].number if "fleet" in message_fields else None
        guard = self.guard_deadlines
        lane = None if blocking else self.lane
        threshold = lane.config.threshold_seconds if lane is not None else float("inf")
        pool = self.thread_pool
        budget = self.budget

        def hand_over(out: bytes, context: Any) -> bytes:
            """``out``, counted against its connection's budget when large (RESOURCE_EXHAUSTED when over)."""
            if budget is None or len(out) < TRACKED_ANSWER_BYTES:
                return out
            peer = context.peer()
            size = len(out)
            if not budget.take(peer, size):
                mb = budget.held.get(peer, 0) / 1e6
                status = retry_status(
                    f"this connection has {mb:.0f} MB of answers it has not read yet (limit "
                    f"{budget.limit_bytes / 1e6:.0f} MB); read them, or retry later",
                    1.0,
                )
                raise Aborted(status.code, status.details, tuple(status.trailing_metadata))
            context.add_done_callback(lambda _ctx: budget.give(peer, size))
            return out

        tracker = self.tracker
        observe = self.observe if (self.metrics is not None or self.log_calls) else None

        def run_on_thread(request: Any, deadline: float | None, context: Any) -> bytes:
            if deadline is not None and deadline <= time.monotonic():
                raise Aborted(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed while the call waited")
            if context.done():
                raise Aborted(grpc.StatusCode.CANCELLED, "the call was cancelled")
            return bytes(inner(request, HandlerContext(deadline, lambda: not context.done())).SerializeToString())

        async def heavy(payload: Any, deadline: float | None, needed: float, context: Any) -> bytes:
            """``payload`` (the request, or its wire bytes for a wire method) run in the heavy lane."""
            if lane is None:
                raise Aborted(grpc.StatusCode.INTERNAL, f"{name} asked for the heavy lane, which is off")
            if lane.full():
                status = lane.refusal()
                raise Aborted(status.code, status.details, tuple(status.trailing_metadata))
            if budget is None:
                return await lane.run(name, payload, deadline, needed)
            peer = context.peer()
            running = budget.heavy.get(peer, 0)
            if running >= budget.heavy_calls:
                status = retry_status(
                    f"this connection already has {running} expensive calls in progress; wait for one to finish",
                    max(0.1, needed * running),
                )
                raise Aborted(status.code, status.details, tuple(status.trailing_metadata))
            budget.heavy[peer] = running + 1
            try:
                out = await lane.run(name, payload, deadline, needed)
            finally:
                left = budget.heavy.get(peer, 1) - 1
                if left > 0:
                    budget.heavy[peer] = left
                else:
                    budget.heavy.pop(peer, None)
            return hand_over(out, context)

        def admit(remaining: float | None, needed: float) -> None:
            if guard and remaining is not None and remaining < needed:
                raise Aborted(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"{remaining * 1e3:.1f} ms left of the deadline; this request needs about {needed * 1e3:.1f} ms",
                )

        async def behavior(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            start = time.perf_counter()
            code = "OK"
            key = 0
            try:
                raw = await context.read()  # a client that never sends its body holds this coroutine, no thread
                if raw is grpc.aio.EOF:  # type: ignore[attr-defined]
                    raise Aborted(
                        grpc.StatusCode.INVALID_ARGUMENT, f"the stream ended before a whole {type_name} arrived"
                    )
                key = tracker.enter(method)  # in flight from here: a drain waits for it
                remaining = context.time_remaining()
                deadline = None if remaining is None else time.monotonic() + remaining
                request: Any = None  # parsed here unless the servicer reads the wire bytes
                if wire_call is None:
                    try:
                        request = parse(raw)
                    except Exception:
                        # Parsing here, not in grpc, turns undecodable bytes into INVALID_ARGUMENT, not INTERNAL.
                        raise Aborted(
                            grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {type_name}"
                        ) from None
                if estimate is None:
                    needed = cost.BASE_SECONDS
                elif fleet_field is not None:
                    needed = estimate(request, shapes.shape(raw, fleet_field, request))
                else:
                    needed = estimate(request)
                admit(remaining, needed)
                if wire_call is not None:  # the servicer parses and serializes
                    try:
                        out = wire_call(raw, HandlerContext(deadline, lambda: not context.done()))
                    except DecodeError:
                        raise Aborted(
                            grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {type_name}"
                        ) from None
                    except Offload as e:  # read, checked, and found to cost more than runs here
                        admit(remaining, e.estimate_seconds)
                        return await heavy(raw, deadline, e.estimate_seconds, context)
                    return hand_over(out, context)
                if lane is not None and needed >= threshold:
                    return await heavy(request, deadline, needed, context)
                if pool is not None and blocking:
                    loop = asyncio.get_running_loop()
                    out = await loop.run_in_executor(pool, run_on_thread, request, deadline, context)
                    return hand_over(out, context)
                try:
                    response = inner(request, HandlerContext(deadline, lambda: not context.done()))
                except Offload as e:
                    admit(remaining, e.estimate_seconds)
                    return await heavy(request, deadline, e.estimate_seconds, context)
                return hand_over(response.SerializeToString(), context)
            except Aborted as e:
                code = e.code.name
                failure = e
            except asyncio.CancelledError:
                code = "CANCELLED"
                tracker.cancelled(key)
                raise
            except Exception:
                code = "INTERNAL"
                log.exception("unexpected error in %s", name)
                failure = Aborted(grpc.StatusCode.INTERNAL, f"internal error in {name}")
            finally:
                tracker.leave(key)
                if observe is not None:
                    observe(method, code, time.perf_counter() - start)
            # Aborting sends the status at once: recorded first, so metrics and logs are there when the client sees it.
            await context.abort(failure.code, failure.details, failure.trailing_metadata)
            raise AssertionError("unreachable: abort raises")

        return behavior


class _AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Refuses calls without the bearer token (except exempt services), before their request is read."""

    def __init__(self, guard: CallGuard) -> None:
        assert guard.auth is not None
        self.auth = guard.auth
        self.guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """The method's handler, or one that answers UNAUTHENTICATED."""
        handler = await continuation(details)
        method = details.method
        if handler is None or self.auth.exempt(method) or self.auth.allows(details.invocation_metadata):
            return handler  # type: ignore[return-value]  # None: unknown method (grpc's stub says never None)
        if method.startswith(PLANNER_PREFIX):
            self.guard.observe(method, "UNAUTHENTICATED", 0.0)
        return _refusing(handler)


async def _unauthenticated(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


def _refusing(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as ``handler`` that answers UNAUTHENTICATED."""
    make: Any = grpc.unary_unary_rpc_method_handler
    if handler.request_streaming and handler.response_streaming:
        make = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        make = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        make = grpc.unary_stream_rpc_method_handler
    return make(  # type: ignore[no-any-return]
        _unauthenticated,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
