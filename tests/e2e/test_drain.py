"""SIGTERM on the real process: health flips to NOT_SERVING, calls in flight finish, new calls are refused, exit 0."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import grpc
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
