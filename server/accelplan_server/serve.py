"""Running the gRPC server: planner, health and reflection services, graceful shutdown."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from accelplan.v1 import planner_service_pb2, planner_service_pb2_grpc
from accelplan_server.core.catalog import load_catalog
from accelplan_server.servicer import PlannerServicer

log = logging.getLogger("accelplan.server")

SERVICE_NAME = planner_service_pb2.DESCRIPTOR.services_by_name["PlannerService"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest request or response accepted, in bytes."""


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server."""

    host: str = "localhost"
    port: int = 50051
    max_workers: int = 16
    grace_seconds: float = 10.0
    data_dir: Path | None = None


class PortInUse(RuntimeError):
    """The requested address could not be bound."""


class RunningServer:
    """A started server with its health service, stoppable gracefully."""

    def __init__(self, server: grpc.Server, health_servicer: health.HealthServicer, port: int) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port

    def stop(self, grace_seconds: float) -> None:
        """Report NOT_SERVING, refuse new calls, let calls in flight finish within the grace period."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_seconds).wait()


def start(config: ServerConfig, interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = ()) -> RunningServer:
    """Build and start the server; the catalogue is loaded before the port opens."""
    catalog = load_catalog(config.data_dir)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="accelplan"),
        interceptors=list(interceptors),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
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
        port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise PortInUse(f"cannot listen on {address}: {e}") from None
    if port == 0:
        raise PortInUse(f"cannot listen on {address}: address in use or not available")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, port)


def serve(config: ServerConfig) -> int:
    """Run until SIGTERM or SIGINT, then drain; returns the process exit code."""
    try:
        running = start(config)
    except PortInUse as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    if config.host not in ("localhost", "127.0.0.1", "::1", "[::1]"):
        log.warning("listening on %s without TLS: traffic is plaintext", config.host)
    log.info("accelplan serving %s on %s:%d", SERVICE_NAME, config.host, running.port)
    print(f"accelplan listening on {config.host}:{running.port}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; draining for up to %.0fs", signal.Signals(signum).name, config.grace_seconds)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    running.stop(config.grace_seconds)
    log.info("stopped")
    return 0
