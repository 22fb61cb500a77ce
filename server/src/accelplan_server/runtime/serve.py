"""Running the gRPC server on grpc.aio: planner, health and reflection, TLS, auth, metrics, lanes, limits, drain.

The server is an asyncio one (see runtime/interceptors.py for how a call is
run): waiting for a slow client's request costs a coroutine, not a thread.
Connections are bounded (streams per connection, handshake, idle and age
limits, keepalive enforcement), every requested address is bound or start-up
fails, and SIGTERM drains the way Kubernetes expects: health answers
NOT_SERVING for ``drain_delay`` seconds while calls are still served, then new
calls are refused and those in flight get ``grace_seconds`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer

from accelplan.v1 import (
    planner_service_pb2,
    planner_service_pb2_grpc,
    scheduler_service_pb2,
    scheduler_service_pb2_grpc,
)
from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.rpc.planner import PlannerServicer
from accelplan_server.rpc.scheduler import SchedulerServicer
from accelplan_server.runtime import allocator, compiled
from accelplan_server.runtime.context import HandlerCapture
from accelplan_server.runtime.interceptors import CallGuard, ConnectionBudget
from accelplan_server.runtime.lanes import HeavyLane, LaneConfig, default_workers
from accelplan_server.runtime.process import raise_open_file_limit
from accelplan_server.runtime.reflection import SERVICE_NAME as REFLECTION_NAME
from accelplan_server.runtime.reflection import add_reflection
from accelplan_server.runtime.security import TlsFiles, TokenAuth

log = logging.getLogger("accelplan.server")

SERVICE_NAME = planner_service_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name
SCHEDULER_SERVICE_NAME = scheduler_service_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name
HEALTH_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest request or response accepted, in bytes."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")

EXIT_OK = 0
"""Drained cleanly: every call in flight finished within --grace."""
EXIT_START_FAILED = 2
"""Could not start: bad flags, a credential, an address that could not be bound."""
EXIT_CALLS_CUT = 3
"""Stopped, but calls still running when --grace ran out were cut (each is logged)."""
EXIT_CODES_HELP = (
    "exit status: 0 drained cleanly; 2 could not start (flags, credentials, an address not bound); "
    "3 stopped but calls still running at the end of --grace were cut (each is logged); "
    "1 an unexpected error (with --workers: a worker that did not drain cleanly)."
)


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server."""

    host: str = "localhost"
    port: int = 50051
    max_workers: int = 16
    """Threads for handlers that may block (extra sync interceptors); planner calls run inline or in the lane."""
    grace_seconds: float = 10.0
    drain_delay_seconds: float = 0.0
    """On SIGTERM: seconds health answers NOT_SERVING while calls are still served (``--drain-delay``; the
    command line's default is 5)."""
    data_dir: Path | None = None
    workers: int = 1
    """Processes sharing the port (SO_REUSEPORT); 1 runs in this process."""
    reuse_port: bool = False
    """Let other sockets bind the same port: only ``--workers`` sets this, so a taken port fails loudly."""
    tls: TlsFiles | None = None
    auth: TokenAuth | None = field(default=None, repr=False)
    metrics_port: int | None = None
    """Port for Prometheus /metrics; None turns metrics off."""
    metrics_host: str = "127.0.0.1"
    """Address /metrics listens on; loopback unless asked (the page is unauthenticated)."""
    log_calls: bool = False
    """One DEBUG line per call (rpc, status, duration)."""
    guard_deadlines: bool = True
    """Refuse fleet requests whose deadline is shorter than their estimated work."""
    heavy_workers: int = field(default_factory=default_workers)
    """Processes in the heavy lane; 0 runs every call inline."""
    heavy_queue: int = 64
    """Most heavy calls queued or running; past it RESOURCE_EXHAUSTED with a retry hint."""
    heavy_threshold_seconds: float = 0.02
    """Calls estimated at or above this (rpc/cost.py) run in the heavy lane."""
    max_streams_per_connection: int = 100
    """grpc.max_concurrent_streams: calls one connection can have open at once."""
    max_unread_bytes_per_connection: int = 64 << 20
    """Large answers one connection may hold unread (its window closed); past it RESOURCE_EXHAUSTED."""
    max_connection_idle_seconds: float = 300.0
    max_connection_age_seconds: float = 3600.0
    max_connection_age_grace_seconds: float = 30.0
    handshake_timeout_seconds: float = 10.0
    """A connection that has not finished its TLS/HTTP2 handshake by then is closed."""
    keepalive_seconds: float = 60.0
    """Ping idle connections this often; a peer that does not answer within 20 s is dropped."""
    min_client_ping_seconds: float = 10.0
    """Clients pinging more often than this (twice) are disconnected (keepalive enforcement)."""


class PortInUse(RuntimeError):
    """A requested address could not be bound."""


def server_options(config: ServerConfig) -> list[tuple[str, Any]]:
    """Channel arguments: message caps, per-connection stream cap, connection lifetimes, keepalive enforcement."""

    def ms(seconds: float) -> int:
        return int(seconds * 1000)

    return [
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", config.max_streams_per_connection),
        ("grpc.max_connection_idle_ms", ms(config.max_connection_idle_seconds)),
        ("grpc.max_connection_age_ms", ms(config.max_connection_age_seconds)),
        ("grpc.max_connection_age_grace_ms", ms(config.max_connection_age_grace_seconds)),
        ("grpc.server_handshake_timeout_ms", ms(config.handshake_timeout_seconds)),
        ("grpc.keepalive_time_ms", ms(config.keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", ms(config.min_client_ping_seconds)),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def bind_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` names, as gRPC listen strings without the port ("127.0.0.1", "[::1]")."""
    bare = host.strip("[]")
    if bare == "localhost":  # both loopbacks whatever /etc/hosts says; ::1 only where the kernel has IPv6
        return ["127.0.0.1", "[::1]"] if _has_ipv6_loopback() else ["127.0.0.1"]
    if bare in ("", "0.0.0.0", "::"):
        return [f"[{bare}]" if ":" in bare else bare or "0.0.0.0"]
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise PortInUse(f"cannot listen on {host}:{port}: {e}") from None
    out: list[str] = []
    for family, _, _, _, addr in infos:
        ip = str(addr[0])
        text = f"[{ip}]" if family == socket.AF_INET6 else ip
        if text not in out:
            out.append(text)
    return out


def _has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound at all here (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _layers_of(servicer: PlannerServicer) -> Callable[[Any], int | None]:
    """The cost model's view of a ModelSpec's depth: catalogue models and explicit architectures."""

    def layers(spec: Any) -> int | None:
        which = spec.WhichOneof("source")
        if which == "model_id":
            try:
                profile = servicer.profiles.get(servicer.catalog.model(spec.model_id).id)
            except Exception:  # unknown ids are the handler's to report
                return None
            return profile.architecture.num_hidden_layers if profile and profile.architecture else None
        if which == "architecture":
            return int(spec.architecture.num_hidden_layers) or None
        return None

    return layers


class _Health(AioHealthServicer):  # type: ignore[misc]
    """Standard health; open Watch streams end when the server stops taking calls, so they do not hold it."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = asyncio.Event()

    async def Watch(self, request: Any, context: Any) -> None:
        """Stream status changes until the client leaves or the server closes."""
        watch = asyncio.ensure_future(super().Watch(request, context))
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait({watch, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, closing):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch


@dataclass
class Served:
    """A started aio server and what its drain needs (lives on its event loop)."""

    server: grpc.aio.Server
    health: _Health
    guard: CallGuard
    port: int
    metrics_port: int | None
    thread_pool: futures.ThreadPoolExecutor
    lane: HeavyLane | None

    async def not_serving(self) -> None:
        """Health answers NOT_SERVING from now on (Check and Watch); calls are still served."""
        await self.health.enter_graceful_shutdown()

    async def drain(self, grace_seconds: float, drain_delay_seconds: float = 0.0) -> list[tuple[str, float]]:
        """NOT_SERVING for the drain delay, then refuse new calls and give those in flight the grace period.

        Returns (method, seconds it had run) for each call cut when the grace ran out (each is logged).
        """
        await self.not_serving()
        if drain_delay_seconds > 0:
            await asyncio.sleep(drain_delay_seconds)
        self.health.closing.set()
        tracker = self.guard.tracker
        tracker.cut_after = time.monotonic() + grace_seconds - 0.01
        await self.server.stop(grace_seconds)
        await asyncio.sleep(0)  # let cancelled handlers record themselves
        cut = list(tracker.cut)
        for method, ran in cut:
            log.warning("call cut at the end of the %.1fs grace: rpc=%s ran %.1fs", grace_seconds, method, ran)
        if self.lane is not None:
            self.lane.close()
        self.thread_pool.shutdown(wait=False, cancel_futures=True)
        return cut


async def start_async(
    config: ServerConfig,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    *,
    catalog: Catalog | None = None,
    serve_metrics: bool = True,
) -> Served:
    """Build and start the server on the running loop; the catalogue is loaded before any port opens.

    ``interceptors`` are sync interceptors applied once per planner method (they
    see the method name, not a call's metadata); the handlers they wrap run on
    the thread pool, not inline or in the heavy lane.
    """
    catalog = catalog or load_catalog(config.data_dir)
    servicer = PlannerServicer(catalog)
    metrics = None
    if config.metrics_port is not None:
        from accelplan_server.runtime.metrics import rpc_metrics

        metrics = rpc_metrics()
    pool = futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="accelplan")
    lane = None
    if config.heavy_workers > 0:
        lane = HeavyLane(
            LaneConfig(config.heavy_workers, config.heavy_queue, config.heavy_threshold_seconds, config.data_dir)
        )
    guard = CallGuard(
        auth=config.auth,
        metrics=metrics,
        log_calls=config.log_calls,
        guard_deadlines=config.guard_deadlines,
        lane=lane,
        layers_of=_layers_of(servicer),
        catalogue_skus=len(catalog.accelerators),
        thread_pool=pool,
        budget=ConnectionBudget(config.max_unread_bytes_per_connection),
    )
    server = grpc.aio.server(
        migration_thread_pool=pool, interceptors=guard.interceptors(), options=server_options(config)
    )
    capture = HandlerCapture()
    planner_service_pb2_grpc.add_PlannerServiceServicer_to_server(servicer, capture)  # type: ignore[arg-type]
    scheduling = HandlerCapture()
    # RankNodes sizing more new shapes than the lane's threshold pays for reruns in the lane (rpc.status.Offload).
    scheduler = SchedulerServicer(catalog, inline_seconds=config.heavy_threshold_seconds if lane is not None else None)
    scheduler_service_pb2_grpc.add_SchedulerServiceServicer_to_server(scheduler, scheduling)  # type: ignore[arg-type]
    wire = {SCHEDULER_SERVICE_NAME: scheduler.wire_methods()}
    for name, captured in ((SERVICE_NAME, capture), (SCHEDULER_SERVICE_NAME, scheduling)):
        handlers = guard.planner_handlers(captured.handlers, name, interceptors, wire.get(name))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        server.add_registered_method_handlers(name, handlers)  # type: ignore[attr-defined]
    health_servicer = _Health()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    add_reflection(server, (SERVICE_NAME, SCHEDULER_SERVICE_NAME, HEALTH_NAME, REFLECTION_NAME))
    port = _bind(server, config)
    metrics_port = None
    if config.metrics_port is not None and serve_metrics:
        from accelplan_server.runtime.metrics import start_http_server

        try:
            metrics_port = start_http_server(config.metrics_host, config.metrics_port)
        except OSError as e:
            await server.stop(0)
            raise PortInUse(
                f"cannot serve metrics on {config.metrics_host}:{config.metrics_port}: {e.strerror}"
            ) from None
    await server.start()
    for name in ("", SERVICE_NAME, SCHEDULER_SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if lane is not None:
        lane.warm()
    return Served(server, health_servicer, guard, port, metrics_port, pool, lane)


def _bind(server: grpc.aio.Server, config: ServerConfig) -> int:
    """Bind every address of ``config.host`` on one port; PortInUse unless each of them is bound."""
    port = config.port
    for address in bind_addresses(config.host, config.port):
        target = f"{address}:{port}"
        try:
            if config.tls is not None:
                bound = server.add_secure_port(target, config.tls.credentials())
            else:
                bound = server.add_insecure_port(target)
        except RuntimeError as e:
            raise PortInUse(f"cannot listen on {target} (for --host {config.host}): {e}") from None
        if bound == 0:
            raise PortInUse(f"cannot listen on {target} (for --host {config.host}): address in use or not available")
        port = bound
    return port


class RunningServer:
    """A server started in this process with its event loop on a thread of its own (embedding and tests)."""

    def __init__(self, served: Served, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.served = served
        self.loop = loop
        self.thread = thread
        self.port = served.port
        self.metrics_port = served.metrics_port

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def not_serving(self) -> None:
        """Health answers NOT_SERVING from now on; calls are still served."""
        self._call(self.served.not_serving(), 10)

    def stop(self, grace_seconds: float = 0.0, drain_delay_seconds: float = 0.0) -> list[tuple[str, float]]:
        """Drain (see ``Served.drain``) and end the loop; returns the calls that were cut."""
        try:
            cut: list[tuple[str, float]] = self._call(
                self.served.drain(grace_seconds, drain_delay_seconds), grace_seconds + drain_delay_seconds + 30
            )
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        return cut


def start(
    config: ServerConfig,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    *,
    catalog: Catalog | None = None,
    serve_metrics: bool = True,
) -> RunningServer:
    """``start_async`` on a new event loop running on a daemon thread; returns once the server is serving."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="accelplan-loop", daemon=True)
    thread.start()
    try:
        served = asyncio.run_coroutine_threadsafe(
            start_async(config, interceptors, catalog=catalog, serve_metrics=serve_metrics), loop
        ).result(60)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        raise
    return RunningServer(served, loop, thread)


def warn_if_plaintext(config: ServerConfig) -> None:
    """Plaintext is for loopback only: say so when listening elsewhere without TLS."""
    if config.tls is None and config.host not in LOOPBACK_HOSTS:
        log.warning("listening on %s without TLS: traffic is plaintext", config.host)
        if config.auth is not None:
            log.warning("bearer tokens travel in plaintext too; use --tls-cert/--tls-key")
    if config.metrics_port is not None and config.metrics_host not in LOOPBACK_HOSTS:
        log.warning("/metrics on %s is unauthenticated and readable by anyone who can reach it", config.metrics_host)


def log_limits(config: ServerConfig, open_files: tuple[int, int]) -> None:
    """One line with the limits that bound what clients can hold."""
    log.info(
        "limits: open files %d (hard %d); per connection %d streams and %d MiB of unread answers; "
        "idle connections closed after %.0fs, "
        "all after %.0fs (+%.0fs grace); handshake %.0fs; heavy lane %d processes, queue %d, from %.0f ms",
        open_files[0],
        open_files[1],
        config.max_streams_per_connection,
        config.max_unread_bytes_per_connection >> 20,
        config.max_connection_idle_seconds,
        config.max_connection_age_seconds,
        config.max_connection_age_grace_seconds,
        config.handshake_timeout_seconds,
        config.heavy_workers,
        config.heavy_queue,
        config.heavy_threshold_seconds * 1e3,
    )


def freeze_startup_objects() -> None:
    """Move what start-up built (catalogue, caches, gRPC objects) out of the collector's way.

    The full collections that a busy server triggers every few seconds otherwise
    walk these ~30,000 long-lived objects each time, a pause of 20-35 ms on the
    benchmark machine (bench/RESULTS.md).
    """
    gc.collect()
    gc.freeze()


async def wait_for_stop_signal(on_stop: Callable[[str], None] | None = None) -> None:
    """Return once SIGTERM or SIGINT arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(name: str) -> None:
        if on_stop is not None:
            on_stop(name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    await stop.wait()


async def serve_async(
    config: ServerConfig,
    *,
    catalog: Catalog | None = None,
    serve_metrics: bool = True,
    on_started: Callable[[Served], None] | None = None,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
) -> int:
    """Serve until SIGTERM or SIGINT, then drain; returns the exit code (PortInUse propagates)."""
    served = await start_async(config, interceptors, catalog=catalog, serve_metrics=serve_metrics)
    freeze_startup_objects()
    allocator.reuse_large_blocks(2 * MAX_MESSAGE_BYTES)  # a request and its answer: at most a message each
    if on_started is not None:
        on_started(served)
    await wait_for_stop_signal(
        lambda name: log.info(
            "received %s: NOT_SERVING for %.1fs, then draining for up to %.1fs",
            name,
            config.drain_delay_seconds,
            config.grace_seconds,
        )
    )
    cut = await served.drain(config.grace_seconds, config.drain_delay_seconds)
    log.info("stopped%s", f"; {len(cut)} calls cut" if cut else "")
    return EXIT_CALLS_CUT if cut else EXIT_OK


def serve(config: ServerConfig, interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = ()) -> int:
    """Run one process until SIGTERM or SIGINT, then drain; returns the process exit code."""
    open_files = raise_open_file_limit()

    def started(served: Served) -> None:
        warn_if_plaintext(config)
        compiled.warn_if_missing()
        log_limits(config, open_files)
        scheme = "TLS" if config.tls else "plaintext"
        log.info(
            "accelplan serving %s and %s on %s:%d (%s)",
            SERVICE_NAME,
            SCHEDULER_SERVICE_NAME,
            config.host,
            served.port,
            scheme,
        )
        print(f"accelplan listening on {config.host}:{served.port}", flush=True)
        if served.metrics_port is not None:
            print(f"accelplan metrics on http://{config.metrics_host}:{served.metrics_port}/metrics", flush=True)

    try:
        return asyncio.run(serve_async(config, on_started=started, interceptors=interceptors))
    except PortInUse as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return EXIT_START_FAILED
