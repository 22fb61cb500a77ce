"""Conformance runner for the Python SDK (accelplan.client.PlannerClient; PlannerService and SchedulerService).

    run.py --server HOST:PORT --cases DIR

Rules: tests/conformance/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from accelplan.client import PlannerClient, PlannerError
from accelplan.v1 import planner_service_pb2, scheduler_service_pb2

SERVICES = (
    planner_service_pb2.DESCRIPTOR.services_by_name["PlannerService"],
    scheduler_service_pb2.DESCRIPTOR.services_by_name["SchedulerService"],
)
INTEGER = re.compile(r"^-?\d+$")
DEFAULTS: tuple[Any, ...] = (0, "0", False, "", [], {})


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def is_default(value: Any) -> bool:
    if isinstance(value, bool):
        return value is False
    if isinstance(value, str) and value.endswith("_UNSPECIFIED"):
        return True
    return any(type(value) is type(d) and value == d for d in DEFAULTS) or (isinstance(value, float) and value == 0.0)


def as_integer(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and INTEGER.match(value):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def match(expected: Any, actual: Any, tolerance: float, path: str = "$") -> str | None:
    """None when ``actual`` matches ``expected``, else where and why not."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {actual!r}"
        actual_keys = {camel(k): v for k, v in actual.items()}
        for key, want in expected.items():
            k = camel(key)
            if k not in actual_keys:
                if is_default(want):
                    continue
                return f"{path}.{k}: missing (expected {want!r})"
            why = match(want, actual_keys[k], tolerance, f"{path}.{k}")
            if why:
                return why
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {len(expected)} elements, got {actual!r}"
        for i, (w, a) in enumerate(zip(expected, actual, strict=True)):
            why = match(w, a, tolerance, f"{path}[{i}]")
            if why:
                return why
        return None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected == actual else f"{path}: expected {expected!r}, got {actual!r}"
    if (isinstance(expected, str) and INTEGER.match(expected)) or (isinstance(actual, str) and INTEGER.match(actual)):
        if as_integer(expected) is not None and as_integer(expected) == as_integer(actual):
            return None
        return f"{path}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        bound = tolerance * abs(expected) if expected else tolerance
        return None if abs(actual - expected) <= bound else f"{path}: expected {expected!r}, got {actual!r}"
    return None if expected == actual else f"{path}: expected {expected!r}, got {actual!r}"


def load_cases(folder: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for file in sorted(folder.glob("*.json")):
        cases.extend(json.loads(file.read_text())["cases"])
    return cases


def run_case(client: PlannerClient, case: dict[str, Any]) -> str | None:
    method = next((s.methods_by_name[case["rpc"]] for s in SERVICES if case["rpc"] in s.methods_by_name), None)
    if method is None:
        return f"unknown rpc {case['rpc']}"
    request: Message = message_factory.GetMessageClass(method.input_type)()
    json_format.ParseDict(case.get("request", {}), request)
    expect = case["expect"]
    try:
        response = client.call(method.name, request, timeout=10.0)
    except PlannerError as e:
        if "code" not in expect:
            return f"unexpected {e.code.name}: {e.message}"
        if e.code.name != expect["code"]:
            return f"expected {expect['code']}, got {e.code.name}: {e.message}"
        if "fieldViolations" in expect:
            got = sorted({v.field for v in e.violations})
            if got != sorted(set(expect["fieldViolations"])):
                return f"expected violations {sorted(expect['fieldViolations'])}, got {got}"
        return None
    if "code" in expect:
        return f"expected {expect['code']}, got OK"
    actual = json.loads(json_format.MessageToJson(response))
    return match(expect["response"], actual, float(case.get("tolerance", 1e-9)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--cases", required=True, type=Path)
    args = parser.parse_args()
    passed = failed = 0
    with PlannerClient(args.server, timeout=10.0) as client:
        for case in load_cases(args.cases):
            try:
                why = run_case(client, case)
            except Exception as e:  # a case that cannot even run is a failure, not a crash
                why = f"{type(e).__name__}: {e}"
            if why is None:
                passed += 1
                print(f"PASS {case['name']}")
            else:
                failed += 1
                print(f"FAIL {case['name']}: {why}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
