"""Deadlines and cancellation: a handler never starts work it cannot finish in time, nor work nobody waits for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from accelplan.v1 import hardware_pb2, models_pb2, planner_service_pb2_grpc, planning_pb2, quantization_pb2
from accelplan_server.rpc import cost, deadlines
from accelplan_server.runtime.serve import ServerConfig, start

H = hardware_pb2
SERVICE = "accelplan.v1.PlannerService"


class Recorder(grpc.ServerInterceptor):
    """Inside the server's own guard: sees only calls whose handler actually ran; can hold one call."""

    def __init__(self, hold_seconds: float = 0.0) -> None:
        self.hold_seconds = hold_seconds
        self.ran: list[str] = []
        self.holding = threading.Event()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner, method = handler.unary_unary, details.method

        def run(request: Any, context: grpc.ServicerContext) -> Any:
            self.ran.append(method.rsplit("/", 1)[1])
            if method.endswith("/ListQuantizationLevels") and self.hold_seconds:
                self.holding.set()
                time.sleep(self.hold_seconds)
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            run, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


def big_plan(devices: int) -> planning_pb2.PlanShardingRequest:
    return planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(parameter_count=2_000_000_000_000),
        quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
        fleet=H.Fleet(
            accelerators=[
                H.Accelerator(type=H.ACCELERATOR_TYPE_CUDA_GPU, device_id=i, memory_bytes=80 << 30)
                for i in range(devices)
            ],
            interconnects=[H.Interconnect(kind=H.INTERCONNECT_KIND_NVSWITCH, bandwidth_gigabytes_per_second=900)],
        ),
    )


def test_a_deadline_shorter_than_the_work_is_refused_before_it_starts() -> None:
    rec = Recorder()
    running = start(ServerConfig(port=0), interceptors=[rec])
    try:
        with grpc.insecure_channel(f"localhost:{running.port}") as ch:
            stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
            needed = cost.estimate_seconds("PlanSharding", big_plan(4096))
            with pytest.raises(grpc.RpcError) as err:
                stub.PlanSharding(big_plan(4096), timeout=needed / 2)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "PlanSharding" not in rec.ran
            # With time enough, the same request is planned.
            assert stub.PlanSharding(big_plan(4096), timeout=30).device_count > 0
            assert rec.ran.count("PlanSharding") == 1
    finally:
        running.stop(0)


def test_a_call_that_waited_past_its_deadline_never_runs() -> None:
    rec = Recorder(hold_seconds=1.0)
    running = start(ServerConfig(port=0, max_workers=1), interceptors=[rec])
    try:
        with grpc.insecure_channel(f"localhost:{running.port}") as ch:
            stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
            blocker = stub.ListQuantizationLevels.future(quantization_pb2.ListQuantizationLevelsRequest(), timeout=10)
            assert rec.holding.wait(5)
            # The only handler thread is busy for a second; this call's 0.2 s run out in the queue.
            with pytest.raises(grpc.RpcError) as err:
                stub.PlanSharding(big_plan(8), timeout=0.2)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert blocker.result(timeout=10).levels
            time.sleep(0.2)
            assert "PlanSharding" not in rec.ran
    finally:
        running.stop(0)


def test_a_cancelled_call_never_runs() -> None:
    rec = Recorder(hold_seconds=1.0)
    running = start(ServerConfig(port=0, max_workers=1), interceptors=[rec])
    try:
        with grpc.insecure_channel(f"localhost:{running.port}") as ch:
            stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
            blocker = stub.ListQuantizationLevels.future(quantization_pb2.ListQuantizationLevelsRequest(), timeout=10)
            assert rec.holding.wait(5)
            queued = stub.PlanSharding.future(big_plan(8), timeout=10)
            time.sleep(0.2)
            assert queued.cancel()
            assert blocker.result(timeout=10).levels
            time.sleep(0.3)
            assert "PlanSharding" not in rec.ran
            # The server is fine afterwards.
            assert stub.PlanSharding(big_plan(8), timeout=10).device_count >= 1
    finally:
        running.stop(0)


def test_the_largest_request_finishes_well_within_a_second() -> None:
    """Per-request CPU is bounded: the biggest fleet the caps allow is planned quickly."""
    running = start(ServerConfig(port=0))
    try:
        with grpc.insecure_channel(f"localhost:{running.port}") as ch:
            stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
            stub.PlanSharding(big_plan(4096), timeout=30)  # warm up
            t0 = time.perf_counter()
            plan = stub.PlanSharding(big_plan(4096), timeout=30)
            elapsed = time.perf_counter() - t0
        assert plan.device_count == 4096
        assert elapsed < 2.0, elapsed
    finally:
        running.stop(0)


class _Aborted(Exception):
    pass


class _PassingDeadline:
    """A ServicerContext stand-in whose deadline passes while the handler validates the fleet."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float:
        return 0.0

    def is_active(self) -> bool:
        return True

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise _Aborted

    def code(self) -> grpc.StatusCode | None:
        return self.aborted[0] if self.aborted else None


def test_a_large_fleet_is_checked_again_after_validation() -> None:
    """Admission estimates a known fleet; a new one can take longer, so the deadline is looked at again."""
    from accelplan_server.core.catalog import load_catalog
    from accelplan_server.rpc.planner import PlannerServicer

    servicer = PlannerServicer(load_catalog(), remember_answers=False)
    context = _PassingDeadline()
    with pytest.raises(_Aborted):
        servicer.PlanSharding(big_plan(deadlines.CHECKED_FLEET_SIZE + 1), context)  # type: ignore[arg-type]
    assert context.aborted is not None and context.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    # Small fleets are not checked again: they take microseconds.
    small = _PassingDeadline()
    assert servicer.PlanSharding(big_plan(8), small).device_count > 0  # type: ignore[arg-type]
    assert small.aborted is None
