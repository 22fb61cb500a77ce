"""Prometheus metrics by RPC and status code, and the one-line-per-call debug log."""

from __future__ import annotations

import logging
import re
import urllib.request
from collections.abc import Iterator

import grpc
import pytest

from accelplan.v1 import models_pb2, planner_service_pb2_grpc, planning_pb2, quantization_pb2
from accelplan_server.runtime.serve import RunningServer, ServerConfig, start

M = "/accelplan.v1.PlannerService/"


@pytest.fixture(scope="module")
def observed() -> Iterator[RunningServer]:
    running = start(ServerConfig(port=0, metrics_port=0, log_calls=True))
    yield running
    running.stop(0)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _count(text: str, method: str, code: str) -> float:
    pattern = rf'^accelplan_rpc_requests_total\{{code="{code}",method="{re.escape(method)}"\}} (\S+)$'
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def test_metrics_count_calls_by_code(observed: RunningServer) -> None:
    assert observed.metrics_port
    before = _scrape(observed.metrics_port)
    with grpc.insecure_channel(f"localhost:{observed.port}") as ch:
        stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
        for _ in range(3):
            stub.ListQuantizationLevels(quantization_pb2.ListQuantizationLevelsRequest(), timeout=5)
        for _ in range(2):
            with pytest.raises(grpc.RpcError):
                stub.ResolveQuantizationLevel(quantization_pb2.ResolveQuantizationLevelRequest(bits=12), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.EstimateMemory(
                planning_pb2.EstimateMemoryRequest(
                    model=models_pb2.ModelSpec(model_id="no-such-model"),
                    quantization=quantization_pb2.QUANTIZATION_LEVEL_BFLOAT16,
                ),
                timeout=5,
            )
    after = _scrape(observed.metrics_port)
    assert _count(after, M + "ListQuantizationLevels", "OK") - _count(before, M + "ListQuantizationLevels", "OK") == 3
    resolve = M + "ResolveQuantizationLevel"
    assert _count(after, resolve, "INVALID_ARGUMENT") - _count(before, resolve, "INVALID_ARGUMENT") == 2
    assert _count(after, M + "EstimateMemory", "NOT_FOUND") - _count(before, M + "EstimateMemory", "NOT_FOUND") == 1
    hist = re.search(
        rf'^accelplan_rpc_duration_seconds_count\{{method="{M}ListQuantizationLevels"\}} (\S+)$', after, re.M
    )
    assert hist and float(hist.group(1)) >= 3
    assert "accelplan_rpc_duration_seconds_bucket" in after


def test_debug_log_has_one_line_per_call(observed: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="accelplan.rpc"),
        grpc.insecure_channel(f"localhost:{observed.port}") as ch,
    ):
        stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
        stub.ListQuantizationLevels(quantization_pb2.ListQuantizationLevelsRequest(), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.ResolveQuantizationLevel(quantization_pb2.ResolveQuantizationLevelRequest(bits=12), timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.name == "accelplan.rpc"]
    assert len(lines) == 2
    assert re.fullmatch(rf"rpc={M}ListQuantizationLevels status=OK duration_ms=\d+\.\d+", lines[0])
    assert re.fullmatch(rf"rpc={M}ResolveQuantizationLevel status=INVALID_ARGUMENT duration_ms=\d+\.\d+", lines[1])
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "accelplan.rpc")
