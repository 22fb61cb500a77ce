"""SIGTERM on the real process: health flips to NOT_SERVING, calls in flight finish, new calls are refused, exit 0."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accelplan.v1 import hardware_pb2, models_pb2, planner_service_pb2_grpc, planning_pb2, quantization_pb2

SERVICE = "accelplan.v1.PlannerService"
HOLD_SECONDS = 1.5
GRACE_SECONDS = 5.0


def test_sigterm_drains_in_flight_calls_and_exits_zero() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.slow_server", str(HOLD_SECONDS), str(GRACE_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read() if proc.stderr else line
        address = line.split("listening on ")[1].strip()
        channel = grpc.insecure_channel(address)
        stub = planner_service_pb2_grpc.PlannerServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        statuses: queue.Queue[int] = queue.Queue()
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=20)

        def follow() -> None:
            try:
                for update in watch:
                    statuses.put(update.status)
            except grpc.RpcError:
                pass

        threading.Thread(target=follow, daemon=True).start()
        assert statuses.get(timeout=5) == health_pb2.HealthCheckResponse.SERVING

        request = planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
            quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=hardware_pb2.Fleet(
                accelerators=[
                    hardware_pb2.Accelerator(type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 << 30)
                ]
            ),
        )
        in_flight = stub.PlanSharding.future(request, timeout=20)
        assert proc.stdout.readline().strip() == "entered"  # the handler is running

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert statuses.get(timeout=5) == health_pb2.HealthCheckResponse.NOT_SERVING
        time.sleep(0.3)  # health flips first, then the server stops accepting calls

        with grpc.insecure_channel(address) as fresh:
            refused_at = time.monotonic()
            try:
                planner_service_pb2_grpc.PlannerServiceStub(fresh).ListQuantizationLevels(
                    quantization_pb2.ListQuantizationLevelsRequest(), timeout=2
                )
                raise AssertionError("a new call was accepted during the drain")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
            assert refused_at - t0 < HOLD_SECONDS  # refused while the old call was still running

        plan = in_flight.result(timeout=10)  # the call in flight completed normally
        assert plan.device_count == 1
        assert proc.wait(timeout=GRACE_SECONDS + 5) == 0
        assert time.monotonic() - t0 < GRACE_SECONDS + 1
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def _launch_slow(hold: float, grace: float, drain_delay: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.slow_server", str(hold), str(grace), str(drain_delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, proc.stderr.read() if proc.stderr else line
    return proc, line.split("listening on ")[1].strip()


def _fresh_check(address: str) -> int:
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2).status


def _fresh_call(address: str) -> None:
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        planner_service_pb2_grpc.PlannerServiceStub(ch).ListQuantizationLevels(
            quantization_pb2.ListQuantizationLevelsRequest(), timeout=2
        )


@pytest.mark.slow
def test_drain_delay_answers_not_serving_while_calls_still_work() -> None:
    """Finding 10: after SIGTERM a new Check gets NOT_SERVING (not UNAVAILABLE) and calls are still served."""
    proc, address = _launch_slow(0.1, 5.0, 1.5)
    try:
        assert _fresh_check(address) == health_pb2.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert _fresh_check(address) == health_pb2.HealthCheckResponse.NOT_SERVING
        _fresh_call(address)  # still served during the drain delay
        assert time.monotonic() - t0 < 1.5
        time.sleep(max(0.0, 1.5 + 0.5 - (time.monotonic() - t0)))
        try:
            _fresh_call(address)
            raise AssertionError("a new call was accepted after the drain delay")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_an_open_watch_does_not_hold_the_process() -> None:
    from tests.e2e.conftest import launch_server

    s = launch_server("--grace", "30", "--drain-delay", "0.3")
    try:
        channel = grpc.insecure_channel(s.address)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=60)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        t0 = time.monotonic()
        s.process.send_signal(signal.SIGTERM)
        assert s.process.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5, "the open Watch held the process"
        channel.close()
    finally:
        if s.process.poll() is None:
            s.process.kill()


@pytest.mark.slow
def test_calls_cut_at_the_end_of_the_grace_are_logged_and_change_the_exit_status() -> None:
    proc, address = _launch_slow(3.0, 0.5, 0.0)
    try:
        channel = grpc.insecure_channel(address)
        stub = planner_service_pb2_grpc.PlannerServiceStub(channel)
        request = planning_pb2.PlanShardingRequest(
            model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
            quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
            fleet=hardware_pb2.Fleet(
                accelerators=[
                    hardware_pb2.Accelerator(type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU, memory_bytes=80 << 30)
                ]
            ),
        )
        in_flight = stub.PlanSharding.future(request, timeout=20)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "entered"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 3  # EXIT_CALLS_CUT
        with contextlib.suppress(grpc.RpcError, grpc.FutureCancelledError):
            in_flight.result(timeout=5)
        channel.close()
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert "call cut" in err and "PlanSharding" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
