"""Health, reflection, graceful drain on SIGTERM, and refusing a taken port."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from accelplan.v1 import planner_service_pb2_grpc, quantization_pb2
from accelplan_server.runtime.serve import PortInUse, ServerConfig, start
from tests.e2e.conftest import ServerProcess, launch_server

SERVICE = "accelplan.v1.PlannerService"


def test_health_reports_serving(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", SERVICE):
            resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_reflection_serves_descriptors(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        req = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
        resp = next(iter(stub.ServerReflectionInfo(iter([req]), timeout=5)))
    assert resp.file_descriptor_response.file_descriptor_proto


def test_sigterm_exits_cleanly() -> None:
    s = launch_server("--grace", "5", "--drain-delay", "0.2")
    with grpc.insecure_channel(s.address) as ch:
        stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
        assert stub.ListQuantizationLevels(quantization_pb2.ListQuantizationLevelsRequest(), timeout=5).levels
    start_time = time.monotonic()
    s.process.send_signal(signal.SIGTERM)
    assert s.process.wait(timeout=10) == 0
    assert time.monotonic() - start_time < 6


class _Slow(grpc.ServerInterceptor):
    """Holds planner calls for a while so a drain has something in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.entered = threading.Event()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or not details.method.startswith(f"/{SERVICE}/"):
            return handler
        inner = handler.unary_unary

        def slow(request: Any, context: grpc.ServicerContext) -> Any:
            self.entered.set()
            time.sleep(self.seconds)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            slow, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


def test_drain_finishes_calls_in_flight_and_refuses_new_ones() -> None:
    slow = _Slow(1.0)
    running = start(ServerConfig(port=0), interceptors=[slow])
    address = f"localhost:{running.port}"
    channel = grpc.insecure_channel(address)
    stub = planner_service_pb2_grpc.PlannerServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    in_flight = stub.ListQuantizationLevels.future(quantization_pb2.ListQuantizationLevelsRequest(), timeout=10)
    assert slow.entered.wait(5)
    stopper = threading.Thread(target=running.stop, args=(5.0,))
    stopper.start()
    time.sleep(0.2)
    # New calls on a fresh connection are refused while the old one drains.
    with grpc.insecure_channel(address) as fresh:
        with pytest.raises(grpc.RpcError) as refused:
            planner_service_pb2_grpc.PlannerServiceStub(fresh).ListQuantizationLevels(
                quantization_pb2.ListQuantizationLevelsRequest(), timeout=2
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(in_flight.result(timeout=10).levels) == 6  # the call in flight completed (FP32 ... FP8)
    stopper.join(10)
    assert not stopper.is_alive()
    with pytest.raises(grpc.RpcError):
        health.Check(health_pb2.HealthCheckRequest(), timeout=1)
    channel.close()


def test_health_flips_to_not_serving_on_drain() -> None:
    running = start(ServerConfig(port=0))
    running.not_serving()
    with grpc.insecure_channel(f"localhost:{running.port}") as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING
    running.stop(0)


def test_client_deadline_reaches_the_server() -> None:
    from accelplan.client import PlannerClient, PlannerError

    running = start(ServerConfig(port=0), interceptors=[_Slow(2.0)])
    try:
        with PlannerClient(f"localhost:{running.port}", timeout=0.3) as client, pytest.raises(PlannerError) as err:
            client.list_quantization_levels()
        assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        running.stop(0)


def test_taken_port_is_refused() -> None:
    first = start(ServerConfig(port=0))
    try:
        with pytest.raises(PortInUse):
            start(ServerConfig(port=first.port))
    finally:
        first.stop(0)


def test_taken_port_gives_clear_cli_error(server: ServerProcess) -> None:
    import subprocess
    import sys

    port = server.address.rsplit(":", 1)[1]
    out = subprocess.run(
        [sys.executable, "-m", "accelplan.cli", "serve", "--port", port], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert "cannot listen" in out.stderr
