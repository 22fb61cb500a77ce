"""Deadlines and cancellation: refuse work that cannot finish in time, stop work nobody waits for.

Handlers cannot be pre-empted, so a call is checked before its handler starts
(``admit``, against rpc/cost.py's estimate of what the request needs: a fleet
is priced by its devices, chips and the plan's shards, not by listed devices)
and, for a large fleet, again once the fleet is validated (``check``): a fleet
never seen before is the one phase that can take milliseconds. Only
requests that carry a fleet do work that grows with the request; the rest take
microseconds.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from accelplan_server.rpc import cost

SERVICE_PREFIX = "/accelplan.v1.PlannerService/"
FLEET_METHODS = cost.FLEET_METHODS
"""Methods whose work grows with ``request.fleet``."""
BASE_SECONDS = cost.BASE_SECONDS
"""What any request needs beyond its fleet."""
CHECKED_FLEET_SIZE = 64
"""Fleets with more devices than this are checked again after validation."""

Cost = Callable[..., float]
"""(request, shape=None) -> estimated seconds; ``shape`` as rpc/cost.py's ``fleet_chips`` returns."""


def cost_model(method: str, layers_of: cost.LayersOf | None = None) -> Cost | None:
    """Estimated seconds a request to ``method`` needs, or None for methods not worth checking.

    rpc/cost.py prices fleets by devices, chips and layers; the other methods take microseconds.
    """
    if method.startswith(SERVICE_PREFIX):
        name = method[len(SERVICE_PREFIX) :]
        if name in FLEET_METHODS:
            return lambda request, shape=None: cost.estimate_seconds(name, request, layers_of, shape)
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
