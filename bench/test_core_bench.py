"""Micro-benchmarks of the handlers without the transport: validation, the core calculations, the response message.

Not part of the default test run (pyproject's testpaths is "tests"). Run:
  .venv/bin/pytest bench/test_core_bench.py --benchmark-columns=min,median,mean,max,rounds
A regression here is in the calculations or conversions; one that shows only
in bench/rpc_load.py is in the transport.
"""

from __future__ import annotations

from typing import Any

import pytest

from accelplan_server.core.catalog import load_catalog
from accelplan_server.rpc import convert
from accelplan_server.rpc.planner import PlannerServicer
from bench.workload import CALLS, gpu_fleet

pytest.importorskip("pytest_benchmark")


class Context:
    """Just enough of grpc.ServicerContext for handlers that succeed."""

    def code(self) -> None:
        return None

    def time_remaining(self) -> float:
        return 60.0

    def is_active(self) -> bool:
        return True

    def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"{code}: {details}")

    def abort_with_status(self, status: Any) -> None:
        raise AssertionError(f"aborted: {status}")


SERVICER = PlannerServicer(load_catalog(), remember_answers=False)  # the calculation, not the answer table


@pytest.mark.parametrize("call", CALLS, ids=[c.label for c in CALLS])
def test_handler(benchmark: Any, call: Any) -> None:
    """Parse the request bytes, run the handler, serialize the response: what one RPC costs minus gRPC."""
    raw = call.request.SerializeToString()
    parse = type(call.request).FromString
    handler = getattr(SERVICER, call.method)
    ctx = Context()
    benchmark(lambda: handler(parse(raw), ctx).SerializeToString())


@pytest.mark.parametrize("devices", [8, 1024, 4096])
def test_fleet_validation(benchmark: Any, devices: int) -> None:
    """convert.fleet on a fleet seen before (devices cached) and, with fresh device ids, never seen."""
    fleet = gpu_fleet(devices)
    benchmark(lambda: convert.fleet(fleet, "fleet", convert.Violations(), required=True))


def test_fleet_validation_cold(benchmark: Any) -> None:
    """1,024 devices none of which was seen before (fresh device ids each round): the uncached path."""
    fleet = gpu_fleet(1024)
    rounds = iter(range(1, 10**6))

    def fresh() -> Any:
        offset = next(rounds) * 1_000_000
        for i, a in enumerate(fleet.accelerators):
            a.device_id = offset + i
        return convert.fleet(fleet, "fleet", convert.Violations(), required=True)

    benchmark.pedantic(fresh, rounds=20, iterations=1)


def _plan_request(devices: int) -> Any:
    call = next(c for c in CALLS if c.label == "PlanSharding (1,024 devices)")
    request = type(call.request)()
    request.CopyFrom(call.request)
    request.fleet.CopyFrom(gpu_fleet(devices))
    return request


@pytest.mark.parametrize("seen", ["known devices", "unseen devices"])
def test_plan_on_a_new_fleet(benchmark: Any, seen: str) -> None:
    """PlanSharding over 1,024 devices when the fleet differs from every earlier one.

    "known devices": one device marked unavailable in turn (the devices were seen before, the fleet
    was not), as when a scheduler's free list changes. "unseen devices": fresh device ids every round.
    """
    request = _plan_request(1024)
    rounds = iter(range(1, 10**6))
    ctx = Context()

    def fresh() -> tuple[tuple[bytes], dict[str, Any]]:
        n = next(rounds)
        for i, a in enumerate(request.fleet.accelerators):
            a.unavailable = i == n % 1024
            if seen == "unseen devices":
                a.device_id = n * 1_000_000 + i
        return (request.SerializeToString(),), {}

    def plan(raw: bytes) -> bytes:
        return bytes(SERVICER.PlanSharding(type(request).FromString(raw), ctx).SerializeToString())

    benchmark.pedantic(plan, setup=fresh, rounds=20, iterations=1)
