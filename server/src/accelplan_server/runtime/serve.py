"""Running the gRPC server: planner, health and reflection services, TLS, auth, metrics, graceful shutdown."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from accelplan.v1 import planner_service_pb2, planner_service_pb2_grpc
from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.rpc.planner import PlannerServicer
from accelplan_server.runtime.security import TlsFiles, TokenAuth

log = logging.getLogger("accelplan.server")

SERVICE_NAME = planner_service_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest request or response accepted, in bytes."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server."""

    host: str = "localhost"
    port: int = 50051
    max_workers: int = 16
    grace_seconds: float = 10.0
    data_dir: Path | None = None
    workers: int = 1
    """Processes sharing the port (SO_REUSEPORT); 1 runs in this process."""
    reuse_port: bool = False
    """Let other sockets bind the same port: only ``--workers`` sets this, so a taken port fails loudly."""
    tls: TlsFiles | None = None
    auth: TokenAuth | None = field(default=None, repr=False)
    metrics_port: int | None = None
    """Port for Prometheus /metrics on the same host; None turns metrics off."""
    log_calls: bool = False
    """One DEBUG line per call (rpc, status, duration)."""
    guard_deadlines: bool = True
    """Refuse fleet requests whose deadline is shorter than their estimated work."""


class PortInUse(RuntimeError):
    """The requested address could not be bound."""


class RunningServer:
    """A started server with its health service, stoppable gracefully."""

    def __init__(
        self, server: grpc.Server, health_servicer: health.HealthServicer, port: int, metrics_port: int | None = None
    ) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port
        self.metrics_port = metrics_port

    def stop(self, grace_seconds: float) -> None:
        """Report NOT_SERVING, refuse new calls, let calls in flight finish within the grace period."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_seconds).wait()


def server_options(config: ServerConfig) -> list[tuple[str, Any]]:
    """Channel arguments: message size caps and SO_REUSEPORT only in ``--workers`` mode."""
    return [
        ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def build_interceptors(config: ServerConfig) -> list[grpc.ServerInterceptor[Any, Any]]:
    """The CallGuard for what the config turns on (auth, deadlines, metrics, call logs)."""
    from accelplan_server.runtime.interceptors import CallGuard

    metrics = None
    if config.metrics_port is not None:
        from accelplan_server.runtime.metrics import rpc_metrics

        metrics = rpc_metrics()
    if config.auth is None and metrics is None and not config.log_calls and not config.guard_deadlines:
        return []
    return [
        CallGuard(auth=config.auth, metrics=metrics, log_calls=config.log_calls, guard_deadlines=config.guard_deadlines)
    ]


def start(
    config: ServerConfig,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    *,
    catalog: Catalog | None = None,
    serve_metrics: bool = True,
) -> RunningServer:
    """Build and start the server; the catalogue is loaded before the port opens.

    ``interceptors`` run inside the configured ones (auth and metrics see every call).
    ``serve_metrics=False`` records metrics without opening the HTTP port (a worker
    that is not the one serving /metrics).
    """
    catalog = catalog or load_catalog(config.data_dir)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="accelplan"),
        interceptors=[*build_interceptors(config), *interceptors],
        options=server_options(config),
    )
    planner_service_pb2_grpc.add_PlannerServiceServicer_to_server(PlannerServicer(catalog), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"{config.host}:{config.port}"
    try:
        if config.tls is not None:
            port = server.add_secure_port(address, config.tls.credentials())
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise PortInUse(f"cannot listen on {address}: {e}") from None
    if port == 0:
        raise PortInUse(f"cannot listen on {address}: address in use or not available")
    metrics_port = None
    if config.metrics_port is not None and serve_metrics:
        from accelplan_server.runtime.metrics import start_http_server

        try:
            metrics_port = start_http_server(config.host, config.metrics_port)
        except OSError as e:
            server.stop(0)
            raise PortInUse(f"cannot serve metrics on {config.host}:{config.metrics_port}: {e.strerror}") from None
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, port, metrics_port)


def warn_if_plaintext(config: ServerConfig) -> None:
    """Plaintext is for loopback only: say so when listening elsewhere without TLS."""
    if config.tls is None and config.host not in LOOPBACK_HOSTS:
        log.warning("listening on %s without TLS: traffic is plaintext", config.host)
        if config.auth is not None:
            log.warning("bearer tokens travel in plaintext too; use --tls-cert/--tls-key")


def wait_for_signal(on_stop: Callable[[str], None] | None = None) -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if on_stop is not None:
            on_stop(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()


def freeze_startup_objects() -> None:
    """Move what start-up built (catalogue, caches, gRPC objects) out of the collector's way.

    The full collections that a busy server triggers every few seconds otherwise
    walk these ~30,000 long-lived objects each time, a pause of 20-35 ms on the
    benchmark machine (bench/RESULTS.md).
    """
    gc.collect()
    gc.freeze()


def serve(config: ServerConfig) -> int:
    """Run one process until SIGTERM or SIGINT, then drain; returns the process exit code."""
    try:
        running = start(config)
    except PortInUse as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    freeze_startup_objects()
    warn_if_plaintext(config)
    scheme = "TLS" if config.tls else "plaintext"
    log.info("accelplan serving %s on %s:%d (%s)", SERVICE_NAME, config.host, running.port, scheme)
    print(f"accelplan listening on {config.host}:{running.port}", flush=True)
    if running.metrics_port is not None:
        print(f"accelplan metrics on http://{config.host}:{running.metrics_port}/metrics", flush=True)
    wait_for_signal(lambda name: log.info("received %s; draining for up to %.0fs", name, config.grace_seconds))
    running.stop(config.grace_seconds)
    log.info("stopped")
    return 0
