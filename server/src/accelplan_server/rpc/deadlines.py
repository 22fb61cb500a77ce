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

import time
from collections.abc import Callable

import grpc

from accelplan_server.rpc import cost
from accelplan_server.rpc.status import Offload

SERVICE_PREFIX = "/accelplan.v1.PlannerService/"
SCHEDULER_PREFIX = "/accelplan.v1.SchedulerService/"
FLEET_METHODS = cost.FLEET_METHODS
"""Methods whose work grows with ``request.fleet``."""
BASE_SECONDS = cost.BASE_SECONDS
"""What any request needs beyond its fleet."""
CHECKED_FLEET_SIZE = 64
"""Fleets with more devices than this are checked again after validation."""


class InlineBudget:
    """A progress hook (core's ``progress(done, total)``) raising Offload past ``seconds`` of running here.

    What the call did is dropped, and the serving process reruns it in the heavy lane. For work
    whose size shows only as it goes (RightSize's skus, RankNodes' shapes): calls under the
    budget finish where they are, and no call holds the event loop much past it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        """Offload (estimating the whole at the pace so far) when over budget with work left."""
        spent = time.perf_counter() - self.start
        if spent > self.seconds and done < total:
            raise Offload(spent / max(1, done) * total)


Cost = Callable[..., float]
"""(request, shape=None) -> estimated seconds; ``shape`` as rpc/cost.py's ``fleet_chips`` returns."""


def cost_model(method: str, layers_of: cost.LayersOf | None = None, catalogue_skus: int = 0) -> Cost | None:
    """Estimated seconds a request to ``method`` needs, or None for methods not worth checking.

    rpc/cost.py prices fleets by devices, chips and layers, and RightSize (given the catalogue's
    size) by skus, precisions and replica sizes; the other methods take microseconds, or (RankNodes)
    are priced as they run.
    """
    if method.startswith(SERVICE_PREFIX):
        name = method[len(SERVICE_PREFIX) :]
        if name in FLEET_METHODS:
            return lambda request, shape=None: cost.estimate_seconds(name, request, layers_of, shape)
    if method == SCHEDULER_PREFIX + "RightSize" and catalogue_skus > 0:
        return lambda request, shape=None: cost.right_size_seconds(request, catalogue_skus)
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
