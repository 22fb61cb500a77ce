"""Hostile load (issue 9): slow and abusive clients must not stall, starve or grow the serving process.

Each test starts a real ``accelplan serve`` and attacks it from raw sockets
(h2 frames by hand) or many calls; every loop and wait is bounded.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from accelplan.v1 import models_pb2, planner_service_pb2_grpc, scheduling_pb2
from accelplan_server.core.catalog import load_catalog
from accelplan_server.rpc.scheduler import SchedulerServicer
from bench import hostile_load as attack
from tests.e2e.conftest import ServerProcess, launch_server
from tests.e2e.tls_certs import make_certs

pytestmark = pytest.mark.slow
TOKEN = "hostile-test-token"


def _stop(s: ServerProcess) -> None:
    """Kill the server (draining is test_drain's subject; its 5 s default delay would only slow these down)."""
    if s.process.poll() is None:
        s.process.kill()
    s.process.wait(timeout=10)


def _healthy(address: str, credentials: grpc.ChannelCredentials | None = None, token: str | None = None) -> None:
    """A fresh connection gets a health check and a GetModel answered within 3 s each."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    channel = (
        grpc.secure_channel(address, credentials, options=options)
        if credentials
        else grpc.insecure_channel(address, options=options)
    )
    with channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        metadata = [("authorization", f"Bearer {token}")] if token else None
        model = planner_service_pb2_grpc.PlannerServiceStub(channel).GetModel(
            models_pb2.GetModelRequest(model_id="llama-3.1-8b"), timeout=3, metadata=metadata
        )
        assert model.model.id == "llama-3.1-8b"


def test_half_open_streams_hold_no_thread() -> None:
    """Finding 1: 40 calls that send HEADERS and no body, and 16 reflection streams, leave the server answering."""
    s = launch_server("--heavy-workers", "0")
    socks = []
    try:
        for _ in range(4):
            socks.append(attack.half_open(s.address, attack.PLANNER + "GetModel", 10))
        socks.append(attack.half_open(s.address, attack.REFLECTION, 16))
        time.sleep(0.3)
        _healthy(s.address)
    finally:
        attack.close_all(socks)
        _stop(s)


def test_half_open_streams_hold_no_thread_with_tls_and_token(tmp_path: Path) -> None:
    certs = make_certs()
    files = certs.write(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    s = launch_server(
        "--tls-cert",
        str(files["server.crt"]),
        "--tls-key",
        str(files["server.key"]),
        "--token-file",
        str(token_file),
        "--heavy-workers",
        "0",
    )
    socks = []
    tls = attack.client_tls(certs.ca.cert)
    try:
        for _ in range(2):  # without a token: refused at the headers
            socks.append(attack.half_open(s.address, attack.PLANNER + "GetModel", 10, tls=tls))
        for _ in range(2):  # with the token: admitted, waiting for a body that never comes
            socks.append(attack.half_open(s.address, attack.PLANNER + "GetModel", 10, tls=tls, token=TOKEN))
        socks.append(attack.half_open(s.address, attack.REFLECTION, 16, tls=tls))
        time.sleep(0.3)
        _healthy(s.address, grpc.ssl_channel_credentials(certs.ca.cert), TOKEN)
    finally:
        attack.close_all(socks)
        _stop(s)


def _probe_under_heavy_calls(
    address: str, count: int, seconds: float, what: str, collect: Callable[[Any], Any], **heavy: Any
) -> tuple[attack.Probe, list[Any]]:
    """Cheap calls and health checks for ``seconds`` while ``count`` heavy calls run (attack.heavy_in_flight with
    ``heavy``): the probe and ``collect(future)`` of each heavy call. Fails unless the heavy calls were still
    running when the probe ended and every health check and cheap call succeeded."""
    attack.probe(address, 1.0)  # warm: connections, the heavy lane's processes
    with attack.heavy_in_flight(address, count, timeout=120, **heavy) as futures:
        time.sleep(0.2)
        during = attack.probe(address, seconds)
        assert sum(f.done() for f in futures) < count, f"the {what} finished before the probe: no load"
        outcomes = [collect(f) for f in futures]
    assert during.health_total > 0 and during.health_ok == during.health_total, during
    assert during.cheap_errors == 0, during
    return during, outcomes


def test_heavy_plans_do_not_starve_cheap_calls_or_health() -> None:
    """Finding 2: with 32 distinct 16,384-chip plans in flight, health checks all pass, GetModel p99 <= 20 ms."""
    s = launch_server()
    try:
        during, results = _probe_under_heavy_calls(s.address, 32, 3.0, "heavy plans", lambda f: f.exception(120))
        assert during.p99() <= 20.0, f"GetModel p99 {during.p99():.1f} ms under 32 heavy plans"
        assert all(e is None for e in results), [e for e in results if e is not None][:1]
    finally:
        _stop(s)


def test_rankings_over_thousands_of_shapes_run_in_the_heavy_lane() -> None:
    """A RankNodes over 4,000 distinct device shapes (~0.5 s of sizing, 240 KB: within every cap) is read
    where it arrives, then ranked in the heavy lane: with 6 in flight no cheap call or health check waits
    behind one (inline, each GetModel that arrived during a ranking waited all of it: 0.4 s and more),
    and each answer equals the in-process servicer's."""
    s = launch_server()
    build = functools.partial(attack.many_shapes_rank, nodes=4000)
    try:
        during, answers = _probe_under_heavy_calls(
            s.address, 6, 2.0, "rankings", lambda f: f.result(120), method=attack.SCHEDULER + "RankNodes", build=build
        )
        slowest = max(during.latencies_ms)
        assert slowest <= 150.0, f"a GetModel waited {slowest:.0f} ms behind rankings of 4,000 shapes"
        local = SchedulerServicer(load_catalog())
        for i in (0, 5):
            assert answers[i] == local.rank_bytes(build(i).SerializeToString())
    finally:
        _stop(s)


def test_right_sizes_priced_above_the_threshold_are_answered_from_the_heavy_lane() -> None:
    """RightSize is priced by skus, precisions and replica sizes (rpc/cost.py): with a 1 ms threshold every
    one goes to the lane, which takes one call at a time here, so of six sent at once some are refused as a
    full lane's are, and the others get the in-process answer."""
    s = launch_server("--heavy-threshold-ms", "1", "--heavy-queue", "1")
    local = SchedulerServicer(load_catalog())

    def request(i: int) -> scheduling_pb2.RightSizeRequest:
        model = models_pb2.ModelSpec(model_id="qwen2.5-72b")
        return scheduling_pb2.RightSizeRequest(
            workload=scheduling_pb2.Workload(model=model, concurrency=1 + i), max_devices=16
        )

    try:
        with grpc.insecure_channel(s.address) as ch:
            call = ch.unary_unary(attack.SCHEDULER + "RightSize", request_serializer=None, response_deserializer=None)
            call(request(99).SerializeToString(), timeout=60)  # starts the lane's process
            futures = [call.future(request(i).SerializeToString(), timeout=60) for i in range(6)]
            errors = [f.exception(timeout=60) for f in futures]
        refused = [e for e in errors if e is not None]
        assert refused, "no call reached the lane"
        assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused), refused  # type: ignore[attr-defined]
        for i, (f, e) in enumerate(zip(futures, errors, strict=True)):
            if e is None:
                assert scheduling_pb2.RightSizeResponse.FromString(f.result()) == local.right_size(request(i))
    finally:
        _stop(s)


def test_a_full_heavy_lane_refuses_at_once_with_a_retry_hint() -> None:
    s = launch_server("--heavy-queue", "2")
    try:
        with attack.heavy_in_flight(s.address, 8, timeout=120) as futures:
            errors = [f.exception(timeout=120) for f in futures]
        refused = [e for e in errors if e is not None]
        assert len(refused) >= 5, errors
        for e in refused:
            assert isinstance(e, grpc.Call) and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
            status = rpc_status.from_call(e)  # type: ignore[arg-type]
            assert status is not None
            retry = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(retry)
            assert retry.retry_delay.ToNanoseconds() > 0
        _healthy(s.address)
    finally:
        _stop(s)


def test_a_16384_chip_plan_with_100_ms_is_refused_up_front() -> None:
    s = launch_server()
    try:
        with grpc.insecure_channel(s.address) as ch:
            stub = planner_service_pb2_grpc.PlannerServiceStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                stub.PlanSharding(attack.heavy_plan(7), timeout=0.1)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "needs about" in (err.value.details() or "")  # refused by admission, not by running out
    finally:
        _stop(s)


def _main_rss_mb(pid: int) -> float:
    """RSS of the serving process itself (not its heavy lane, whose caches are bounded on their own), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_unread_streams_pin_bounded_memory() -> None:
    """Finding 3 (runtime half): 100 calls on one connection whose large answers are never read.

    Each answer is ~0.56 MB (a 16,384-shard plan); pinned whole, 100 of them would hold ~56 MB of bytes
    (and several times that in gRPC's and Python's copies). With a 4 MiB budget of unread answers per
    connection, the server hands out a handful and refuses the rest with RESOURCE_EXHAUSTED.
    """
    s = launch_server("--max-unread-mb-per-connection", "4")
    sock = None
    try:
        big = attack.heavy_plan(0)  # 16,384 shards
        with grpc.insecure_channel(s.address, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
            size = planner_service_pb2_grpc.PlannerServiceStub(ch).PlanSharding(big, timeout=60).ByteSize()
        assert size > 500_000
        before = _main_rss_mb(s.process.pid)
        sock = attack.unread(s.address, attack.PLANNER + "PlanSharding", big.SerializeToString(), 100)
        time.sleep(3)
        grown = _main_rss_mb(s.process.pid) - before
        assert grown < 100, f"RSS grew {grown:.0f} MB with 100 unread {size / 1e6:.2f} MB answers"
        _healthy(s.address)
    finally:
        if sock is not None:
            sock.close()
        _stop(s)


def test_idle_connections_past_a_low_soft_limit_leave_the_server_answering() -> None:
    """Finding 7: soft RLIMIT_NOFILE 256 (hard 4096), 400 idle TCP connections, and calls still answered."""

    # The limit is set by a small Python that then execs the server, not by preexec_fn: preexec_fn makes
    # this process fork with gRPC loaded, and gRPC's fork handler can then abort the child before its
    # exec (its poller meets the epoll fd that close_fds just closed; grpc/grpc#43055).
    low_soft_limit = (
        "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", low_soft_limit, "-m", "accelplan.cli", "serve", "--port", "0", "--log-level", "INFO"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    s = ServerProcess(proc, "")
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on " not in line:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"the server did not start (exit {proc.returncode}): {line!r}\n{err[-3000:]}")
        s.address = line.split("listening on ")[1].strip()
        socks = attack.idle(s.address, 400)
        assert len(socks) == 400
        time.sleep(0.5)
        _healthy(s.address)
    finally:
        attack.close_all(socks)
        _stop(s)
    assert proc.stderr is not None
    assert "open files 4096 (hard 4096)" in proc.stderr.read()


def test_a_partly_taken_address_fails_the_start() -> None:
    """Finding 8: another process on 127.0.0.1:P only; `serve --port P` (localhost) must not start on ::1 alone."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "accelplan.cli", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 2, out.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


def test_localhost_is_served_on_both_loopbacks() -> None:
    s = launch_server()
    try:
        port = int(s.address.rsplit(":", 1)[1])
        for target in (f"127.0.0.1:{port}", f"[::1]:{port}"):
            with grpc.insecure_channel(target) as ch:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
    finally:
        _stop(s)


def test_reflection_garbage_logs_one_line_per_call() -> None:
    """Finding 11: undecodable reflection requests log a line each, not a traceback."""
    s = launch_server("--log-level", "INFO")
    try:
        with grpc.insecure_channel(s.address) as ch:
            call = ch.stream_stream(attack.REFLECTION, request_serializer=None, response_deserializer=None)
            for _ in range(3):
                with pytest.raises(grpc.RpcError):
                    list(call(iter([b"\xff\xff\xff\xff"]), timeout=3))
    finally:
        _stop(s)
    assert s.process.stderr is not None
    err = s.process.stderr.read()
    assert "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "reflection" in line.lower()]) <= 3, err
