"""``accelplan serve --workers N``: pre-forked processes on one port (SO_REUSEPORT), drained together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accelplan.v1 import planner_service_pb2_grpc, quantization_pb2
from accelplan_server.runtime.serve import PortInUse, ServerConfig, start
from tests.e2e.conftest import launch_server


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_share_the_port_and_drain_together() -> None:
    s = launch_server("--workers", "2", "--grace", "5", "--drain-delay", "0.2")
    try:
        workers = children(s.process.pid)
        assert len(workers) == 2
        # Fresh connections each time: the kernel spreads them over the workers.
        for _ in range(20):
            with grpc.insecure_channel(s.address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
                assert stub.ListQuantizationLevels(quantization_pb2.ListQuantizationLevelsRequest(), timeout=5).levels
        # A single-process server must not silently share the port with the workers.
        with pytest.raises(PortInUse):
            start(ServerConfig(port=int(s.address.rsplit(":", 1)[1])))
        out = subprocess.run(
            [sys.executable, "-m", "accelplan.cli", "serve", "--port", s.address.rsplit(":", 1)[1], "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 2
        assert "cannot listen" in out.stderr
        t0 = time.monotonic()
        s.process.send_signal(signal.SIGTERM)
        assert s.process.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 6
        assert not any(alive(w) for w in workers)
    finally:
        if s.process.poll() is None:
            s.process.kill()


def test_a_dead_worker_is_replaced() -> None:
    s = launch_server("--workers", "2", "--grace", "2", "--drain-delay", "0.2")
    try:
        first = children(s.process.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = children(s.process.pid)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.2)
        assert len(children(s.process.pid)) == 2 and first[0] not in children(s.process.pid)
        for _ in range(10):
            with grpc.insecure_channel(s.address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert resp.status == health_pb2.HealthCheckResponse.SERVING
        s.process.send_signal(signal.SIGTERM)
        assert s.process.wait(timeout=15) == 0
    finally:
        if s.process.poll() is None:
            s.process.kill()


def _connect_many(address: str, count: int) -> int:
    """How many of ``count`` fresh connections get a health answer within 2 s."""
    ok = 0
    for _ in range(count):
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            try:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
                ok += 1
            except grpc.RpcError:
                pass
    return ok


@pytest.mark.slow
def test_a_stopped_worker_is_replaced() -> None:
    """Finding 9: a SIGSTOPped worker stops beating; the parent kills and replaces it."""
    s = launch_server("--workers", "2", "--grace", "2", "--drain-delay", "0.2")
    try:
        first = children(s.process.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGSTOP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = children(s.process.pid)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.2)
        now = children(s.process.pid)
        assert len(now) == 2 and first[0] not in now, now
        assert not alive(first[0])
        time.sleep(0.5)
        assert _connect_many(s.address, 20) == 20
        s.process.send_signal(signal.SIGTERM)
        assert s.process.wait(timeout=15) == 0
    finally:
        if s.process.poll() is None:
            s.process.kill()


@pytest.mark.slow
def test_workers_die_with_a_killed_parent_and_free_the_port() -> None:
    s = launch_server("--workers", "2")
    port = int(s.address.rsplit(":", 1)[1])
    workers = children(s.process.pid)
    family = workers + [g for w in workers for g in children(w)]  # and the heavy lanes' processes
    assert len(workers) == 2
    s.process.kill()
    s.process.wait(timeout=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.1)
    left = [
        (p, Path(f"/proc/{p}/stat").read_text(), Path(f"/proc/{p}/cmdline").read_bytes()) for p in family if alive(p)
    ]
    assert not left, left
    from accelplan_server.runtime.workers import probe_port

    assert probe_port("localhost", port) == port  # free on every loopback address
