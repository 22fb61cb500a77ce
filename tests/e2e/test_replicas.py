"""Three server processes behind one multi-address target: the client's default service config
(round_robin + retries on UNAVAILABLE) spreads calls over all of them and loses no call when one dies.

Each server's own Prometheus counter says how many calls it answered. Bounded: 90 calls to
check the spread, then at most 600 calls (and 60 s) of load while one replica is killed.
"""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from accelplan.client import PlannerClient, PlannerError
from tests.e2e.conftest import ServerProcess, launch_server

pytestmark = pytest.mark.e2e


def _served_ok(metrics_port: int) -> float:
    """OK calls this replica answered, from its accelplan_rpc_requests_total counter."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        page = r.read().decode()
    return sum(
        float(m.group(1))
        for m in re.finditer(r'^accelplan_rpc_requests_total\{[^}]*code="OK"[^}]*\} (\S+)$', page, re.M)
    )


@pytest.fixture
def replicas() -> Iterator[list[tuple[ServerProcess, int]]]:
    started: list[tuple[ServerProcess, int]] = []
    try:
        for _ in range(3):
            s = launch_server("--host", "127.0.0.1", "--metrics-port", "0")
            assert s.process.stdout is not None
            m = re.search(r"metrics on http://\S+:(\d+)/metrics", s.process.stdout.readline())
            assert m, "no metrics line"
            started.append((s, int(m.group(1))))
        yield started
    finally:
        for s, _ in started:
            if s.process.poll() is None:
                s.process.terminate()
        for s, _ in started:
            s.process.wait(timeout=15)


def _target(replicas: list[tuple[ServerProcess, int]]) -> str:
    return "ipv4:" + ",".join(s.address.replace("localhost", "127.0.0.1") for s, _ in replicas)


def _wait_all_ready(client: PlannerClient, replicas: list[tuple[ServerProcess, int]]) -> None:
    """round_robin only picks READY subchannels: call until every replica has answered once."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        client.list_quantization_levels()
        if all(_served_ok(port) > 0 for _, port in replicas):
            return
    pytest.fail("not every replica was reached within 20 s")


def test_default_channel_spreads_calls_over_every_replica(replicas: list[tuple[ServerProcess, int]]) -> None:
    with PlannerClient(_target(replicas), timeout=10) as client:
        _wait_all_ready(client, replicas)
        before = [_served_ok(port) for _, port in replicas]
        calls = 90
        for _ in range(calls):
            client.list_quantization_levels()
        served = [_served_ok(port) - b for (_, port), b in zip(replicas, before, strict=True)]
    assert sum(served) == calls
    # round_robin over three READY subchannels: an even split, give or take reconnection noise.
    assert all(n >= calls / 3 - 5 for n in served), served


def test_pick_first_without_the_default_config_pins_one_replica(replicas: list[tuple[ServerProcess, int]]) -> None:
    """The control: grpc's own default (no service config) sends everything to one replica."""
    with PlannerClient(_target(replicas), timeout=10, service_config=None) as client:
        for _ in range(30):
            client.list_quantization_levels()
    served = sorted(_served_ok(port) for _, port in replicas)
    assert served == [0, 0, 30]


def test_killing_a_replica_under_load_loses_no_call(replicas: list[tuple[ServerProcess, int]]) -> None:
    errors: list[PlannerError] = []
    done = 0
    stop = threading.Event()

    def load(client: PlannerClient) -> None:
        nonlocal done
        end = time.monotonic() + 60
        while not stop.is_set() and done < 600 and time.monotonic() < end:
            try:
                client.list_quantization_levels()
                done += 1
            except PlannerError as e:
                errors.append(e)

    with PlannerClient(_target(replicas), timeout=10) as client:
        _wait_all_ready(client, replicas)
        worker = threading.Thread(target=load, args=(client,))
        worker.start()
        while done < 100 and worker.is_alive():
            time.sleep(0.01)
        victim, _ = replicas[0]
        victim.process.send_signal(signal.SIGKILL)  # no drain: connections drop mid-load
        victim.process.wait(timeout=10)
        killed_at = done
        worker.join(timeout=90)
        stop.set()
    assert not errors, [str(e) for e in errors[:3]]
    assert done > killed_at + 100, (killed_at, done)
    survivors = [_served_ok(port) for _, port in replicas[1:]]
    assert all(n > 0 for n in survivors)
