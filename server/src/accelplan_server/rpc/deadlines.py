"""Deadlines and cancellation: refuse work that cannot finish in time, stop work nobody waits for.

Handlers run on a thread pool and cannot be pre-empted, so a call is checked
before its handler starts (``admit``, against an estimate of what the request
needs) and, for a large fleet, again once the fleet is validated (``check``):
a fleet never seen before is the one phase that can take milliseconds. Only
requests that carry a fleet do work that grows with the request; the rest take
microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

SERVICE_PREFIX = "/accelplan.v1.PlannerService/"
FLEET_METHODS = frozenset({"PlanSharding", "SuggestQuantization", "FilterAccelerators"})
"""Methods whose work grows with ``request.fleet``."""
BASE_SECONDS = 0.0005
"""What any fleet request needs beyond its devices."""
PER_DEVICE_SECONDS = 0.000004
"""Cost per listed device for a fleet the server has seen before (placement, speed model, response), rounded
up from the 2-core benchmark machine: PlanSharding over 1,024 devices takes about 2.5 ms there
(bench/RESULTS.md). A fleet never seen before costs more (about 22 us per device to validate and
prepare); ``check`` after validation stops such a call if its deadline has passed meanwhile."""
CHECKED_FLEET_SIZE = 64
"""Fleets with more devices than this are checked again after validation."""

Cost = Callable[[Any], float]


def _fleet_cost(request: Any) -> float:
    return BASE_SECONDS + PER_DEVICE_SECONDS * len(request.fleet.accelerators)


def cost_model(method: str) -> Cost | None:
    """Estimated seconds a request to ``method`` needs, or None for methods not worth checking."""
    if method.startswith(SERVICE_PREFIX) and method[len(SERVICE_PREFIX) :] in FLEET_METHODS:
        return _fleet_cost
    return None


def admit(context: grpc.ServicerContext, needed_seconds: float) -> None:
    """Abort with DEADLINE_EXCEEDED when less time is left than the work needs, CANCELLED when the caller left."""
    remaining = context.time_remaining()
    if remaining is not None and remaining < needed_seconds:
        context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"{remaining * 1e3:.1f} ms left of the deadline; this request needs about {needed_seconds * 1e3:.1f} ms",
        )
    if not context.is_active():
        context.abort(grpc.StatusCode.CANCELLED, "the call was cancelled")


def check(context: grpc.ServicerContext) -> None:
    """Between phases of a handler: stop when the deadline has passed or the caller has gone."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed while planning")
    if not context.is_active():
        context.abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
