"""The heavy lane: requests estimated to take long run in a small pool of processes, behind a bounded queue.

A 16,384-chip plan holds a CPU for a few hundred milliseconds of pure Python;
on the event loop (or on a thread, under the GIL) it would stall every cheap
call and health check meanwhile. Requests the cost model (rpc/cost.py) prices
at or above ``threshold_seconds`` are sent here instead, and so are calls whose
cost shows only once their request is read (a RankNodes over thousands of
distinct device shapes: its servicer raises rpc.status.Offload before sizing
any): a ``ProcessPoolExecutor`` of ``workers`` processes (spawned, niced, each
with its own servicers over the same catalogue), at most ``queue_limit`` requests
queued or running. Past that a call is refused at once with RESOURCE_EXHAUSTED
and a google.rpc.RetryInfo saying when to try again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from accelplan_server.runtime.context import Aborted, HandlerContext, Metadata
from accelplan_server.runtime.process import die_with_parent

log = logging.getLogger("accelplan.lanes")

HEAVY_NICE = 5
"""Heavy-lane processes run at a lower priority so the event loop (cheap calls, health) wins the CPU."""

_servicer: Any = None
_scheduler: Any = None


@dataclass(frozen=True)
class LaneConfig:
    """Sizing of the heavy lane."""

    workers: int
    """Processes in the pool; 0 turns the lane off (everything runs inline)."""
    queue_limit: int
    """Most heavy requests queued or running at once; past it, RESOURCE_EXHAUSTED."""
    threshold_seconds: float
    """Requests estimated at or above this many seconds of CPU go to the lane."""
    data_dir: Path | None = None


def default_workers() -> int:
    """One process per core beyond the one the event loop needs, at least 1, at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _init_worker(data_dir: str | None) -> None:
    """Runs once in each lane process: servicers over the catalogue, lower priority, dies with its parent."""
    global _servicer, _scheduler
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(HEAVY_NICE)
    from accelplan_server.core.catalog import load_catalog
    from accelplan_server.rpc.planner import PlannerServicer
    from accelplan_server.rpc.scheduler import SchedulerServicer

    catalog = load_catalog(Path(data_dir) if data_dir else None)
    _servicer = PlannerServicer(catalog)
    _scheduler = SchedulerServicer(catalog)  # no inline limit: here is where the long calls run


def _warm() -> bool:
    return _servicer is not None


def _run(method: str, request: Message | bytes, deadline_wall: float | None) -> tuple[str, Any, str, Metadata]:
    """In a lane process: ("ok", response bytes, "", ()) or ("abort", code name, details, trailing metadata).

    ``request`` is the request message, or its wire bytes for a method the servicer reads as bytes
    (SchedulerService.RankNodes: its ``wire_methods``).
    """
    # Monotonic clocks are per boot on Linux, so the parent's deadline carries over as is.
    context = HandlerContext(deadline_wall)
    if deadline_wall is not None and deadline_wall <= time.monotonic():
        return ("abort", "DEADLINE_EXCEEDED", "the deadline passed while the request waited in the heavy lane", ())
    servicer = _servicer if hasattr(_servicer, method) else _scheduler
    try:
        if isinstance(request, bytes):
            return ("ok", servicer.wire_methods()[method](request, context), "", ())
        response = getattr(servicer, method)(request, context)
    except Aborted as e:
        return ("abort", e.code.name, e.details, e.trailing_metadata)
    return ("ok", response.SerializeToString(), "", ())


def retry_status(message: str, retry_seconds: float) -> grpc.Status:
    """RESOURCE_EXHAUSTED with a google.rpc.RetryInfo (``retry_seconds`` from now)."""
    detail = any_pb2.Any()
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(retry_seconds * 1e9))
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail]))


class HeavyLane:
    """A bounded process pool for expensive requests (see the module docstring)."""

    def __init__(self, config: LaneConfig) -> None:
        self.config = config
        self.in_flight = 0
        self._pool: ProcessPoolExecutor | None = None
        self._queued_seconds = 0.0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork (gRPC's threads do not survive a fork) nor forkserver (its server process
            # would outlive a SIGKILLed parent): each lane process is a child that dies with this one.
            ctx = multiprocessing.get_context("spawn")
            data_dir = str(self.config.data_dir) if self.config.data_dir else None
            self._pool = ProcessPoolExecutor(
                self.config.workers, mp_context=ctx, initializer=_init_worker, initargs=(data_dir,)
            )
        return self._pool

    def warm(self) -> None:
        """Start the processes now (in the background) rather than on the first heavy request."""
        pool = self._executor()
        for _ in range(self.config.workers):
            pool.submit(_warm)

    def full(self) -> bool:
        """Whether a new heavy request would exceed the queue limit."""
        return self.in_flight >= self.config.queue_limit

    def refusal(self) -> grpc.Status:
        """The RESOURCE_EXHAUSTED status for a full lane, with a retry hint from the work already queued."""
        wait = max(0.1, self._queued_seconds / max(1, self.config.workers))
        return retry_status(
            f"server busy: {self.in_flight} expensive requests are queued or running (limit "
            f"{self.config.queue_limit}); retry in about {wait:.1f} s",
            wait,
        )

    async def run(
        self, method: str, request: Message | bytes, deadline: float | None, estimate_seconds: float
    ) -> bytes:
        """The serialized response; raises Aborted with the handler's status (``request`` as ``_run`` takes it)."""
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        self._queued_seconds += estimate_seconds
        try:
            try:
                future = self._executor().submit(_run, method, request, deadline)
            except BrokenProcessPool:
                self._pool = None
                future = self._executor().submit(_run, method, request, deadline)
            wrapped = asyncio.wrap_future(future, loop=loop)
            try:
                kind, value, details, trailing = await wrapped
            except asyncio.CancelledError:
                future.cancel()  # still queued: never runs
                raise
            except BrokenProcessPool:
                self._pool = None
                log.error("a heavy-lane process died; the pool is restarted")
                raise Aborted(grpc.StatusCode.UNAVAILABLE, "the worker process died; retry") from None
        finally:
            self.in_flight -= 1
            self._queued_seconds = max(0.0, self._queued_seconds - estimate_seconds)
        if kind == "ok":
            assert isinstance(value, bytes)
            return value
        raise Aborted(grpc.StatusCode[value], details, trailing)

    def close(self) -> None:
        """Stop the processes; queued work is dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
