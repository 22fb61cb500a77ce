"""Caches are bounded in bytes (issue 9, finding 3): distinct large plans leave the server's RSS within the cap.

Each request is a new 1,024-device fleet with 200-character names planned for a model
that spans most of it: every cache (validated devices and fleets with their memos,
remembered answers) sees a new multi-megabyte entry per call. Unbounded, 500 of them
would keep gigabytes; with ``--cache-bytes 64 MiB`` the server must stay within the
cap plus a stated margin for the allocator and gRPC's buffers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from accelplan.v1 import hardware_pb2, models_pb2, planner_service_pb2_grpc, planning_pb2
from tests.e2e.conftest import ServerProcess, launch_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CACHE_BYTES = 64 << 20
MARGIN_BYTES = 96 << 20
"""Allowed beyond the cap: malloc arenas and fragmentation, gRPC's per-call buffers, protobuf arenas."""
PLANS = 500
DEVICES = 1024


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _request(i: int) -> planning_pb2.PlanShardingRequest:
    devices = [
        hardware_pb2.Accelerator(
            type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU,
            memory_bytes=80 << 30,
            name=f"plan-{i}-gpu-{j}-".ljust(200, "n"),
        )
        for j in range(DEVICES)
    ]
    return planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(parameter_count=20_000_000_000_000 + i),
        quantization=4,  # BF16: ~40 TB over 80 GB devices, about 500 shards
        fleet=hardware_pb2.Fleet(accelerators=devices),
    )


@pytest.fixture
def small_cache_server() -> Iterator[ServerProcess]:
    s = launch_server("--cache-bytes", str(CACHE_BYTES))
    yield s
    s.process.terminate()
    s.process.wait(timeout=15)


def test_500_distinct_large_plans_stay_within_the_cache_cap(small_cache_server: ServerProcess) -> None:
    pid = small_cache_server.process.pid
    options = [("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 16 << 20)]
    with grpc.insecure_channel(small_cache_server.address, options=options) as channel:
        stub = planner_service_pb2_grpc.PlannerServiceStub(channel)
        for i in range(3):  # warm up: imports, first-call allocations
            stub.PlanSharding(_request(-1 - i), timeout=30)
        baseline = _rss_bytes(pid)
        started = time.monotonic()
        peak = baseline
        for i in range(PLANS):
            plan = stub.PlanSharding(_request(i), timeout=30)
            assert len(plan.shards) > 100
            if i % 50 == 0:
                peak = max(peak, _rss_bytes(pid))
        peak = max(peak, _rss_bytes(pid))
    grown = peak - baseline
    print(
        f"RSS {baseline / 2**20:.0f} MiB after warm-up, peak {peak / 2**20:.0f} MiB after {PLANS} distinct "
        f"{DEVICES}-device plans ({time.monotonic() - started:.0f} s); grew {grown / 2**20:.0f} MiB, "
        f"cap {CACHE_BYTES >> 20} MiB + margin {MARGIN_BYTES >> 20} MiB"
    )
    assert grown <= CACHE_BYTES + MARGIN_BYTES
