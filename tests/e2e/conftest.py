"""Fixtures that run the real server: as a subprocess (the shipped command) or in-process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from accelplan.client import PlannerClient
from accelplan.v1 import planner_service_pb2_grpc


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    address: str


def launch_server(*extra: str) -> ServerProcess:
    """Start `accelplan serve --port 0` and wait for its listening line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelplan.cli", "serve", "--port", "0", "--log-level", "WARNING", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return ServerProcess(proc, f"{m.group(1)}:{m.group(2)}")


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    s = launch_server()
    yield s
    s.process.terminate()
    s.process.wait(timeout=15)


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[PlannerClient]:
    with PlannerClient(server.address, timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def stub(server: ServerProcess) -> Iterator[planner_service_pb2_grpc.PlannerServiceStub]:
    channel = grpc.insecure_channel(server.address)
    yield planner_service_pb2_grpc.PlannerServiceStub(channel)
    channel.close()
