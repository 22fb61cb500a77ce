"""A bounded soak: a few minutes of mixed load at about 80% of measured capacity, on loopback.

1. Starts `accelplan serve` (pinned to CPU 0 when there are 2+ cores) and measures capacity:
   the calls per second that complete while the open-loop client below offers far more than
   can be served (for --calibrate seconds, after a warm-up).
2. Runs an open-loop load at --load (default 0.8) of that rate for --minutes, from a separate
   process pinned to CPU 1, recording every call's latency and status.
3. Reports per minute: calls, errors, p50/p99, the server's resident memory; passes when there
   were no errors, p99 in the last minute is within --p99-drift of the first (or under 10 ms),
   and RSS grew less than 10% from the end of the first minute to the end.

  .venv/bin/python -m bench.soak --minutes 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import grpc

from bench.rpc_load import percentile
from bench.workload import CALLS

MIX = [c for c in CALLS if "1,024" not in c.label] + [c for c in CALLS if "1,024" in c.label]
WEIGHTS = [10] * (len(MIX) - 2) + [1, 1]
"""Every RPC of the benchmark equally, the 1,024-device plans a tenth as often. Calls with
variants send a different one each time, so the soak exercises the calculations, not only
the answer table."""


def payloads(call: Any) -> list[bytes]:
    """The call's request and its variants, serialized."""
    return [call.request.SerializeToString()] + [v.SerializeToString() for v in call.variants]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
    return int(m.group(1)) * 1024 if m else 0


def schedule() -> list[Any]:
    out = []
    for call, w in zip(MIX, WEIGHTS, strict=True):
        out += [call] * w
    return out


OVERLOAD_QPS = 50_000.0
"""An offered rate no loopback run on a few cores reaches: what completes is the capacity."""


async def calibrate(target: str, seconds: float) -> float:
    """Capacity: calls completed per second while the open-loop client offers more than can be served.

    The same client as the soak (a task per call, at most MAX_INFLIGHT at once), so the soak's
    share of it is a share of what this client and server can do together. The first of
    three windows is a warm-up and not counted.
    """
    window = seconds / 2
    result = await soak(target, OVERLOAD_QPS, seconds + window, None, window_seconds=window, quiet=True)
    counted = result["windows"][1:]
    return sum(w["calls"] for w in counted) / sum(w["seconds"] for w in counted)


MAX_INFLIGHT = 512
"""Bound on calls in flight: a stalled server cannot make the client grow without limit."""


async def soak(
    target: str,
    rate: float,
    seconds: float,
    server_pid: int | None,
    *,
    window_seconds: float = 60.0,
    quiet: bool = False,
) -> dict[str, Any]:
    """Open-loop load at ``rate`` for ``seconds``; latency, errors and server memory per window."""
    calls = schedule()
    interval = 1.0 / rate
    windows: list[dict[str, Any]] = []
    lat: list[float] = []
    errors: dict[str, int] = {}
    inflight: set[asyncio.Task[None]] = set()
    async with grpc.aio.insecure_channel(target) as ch:
        methods = [(ch.unary_unary(c.path), payloads(c)) for c in calls]

        async def one(i: int) -> None:
            m, options = methods[i % len(methods)]
            t0 = time.perf_counter()
            try:
                await m(options[i % len(options)], timeout=10)
                lat.append(time.perf_counter() - t0)
            except grpc.aio.AioRpcError as e:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1

        start = time.perf_counter()
        end = start + seconds
        window_start, window_end = start, start + window_seconds
        i = 0
        next_at = start
        skipped = 0
        while True:
            now = time.perf_counter()
            if now >= window_end or now >= end:
                lat.sort()
                windows.append(
                    {
                        "minute": len(windows) + 1,
                        "calls": len(lat),
                        "errors": dict(errors),
                        "skipped": skipped,
                        "p50_ms": percentile(lat, 0.5) * 1e3,
                        "p99_ms": percentile(lat, 0.99) * 1e3,
                        "seconds": now - window_start,
                        "rss_mib": rss_bytes(server_pid) / 2**20 if server_pid else 0.0,
                    }
                )
                if not quiet:
                    print(json.dumps(windows[-1]), flush=True)
                lat, errors, skipped = [], {}, 0
                window_start, window_end = now, window_end + window_seconds
                if now >= end:
                    break
            if now < next_at:
                await asyncio.sleep(min(next_at - now, 0.01))
                continue
            next_at += interval
            if len(inflight) >= MAX_INFLIGHT:
                skipped += 1
                continue
            t = asyncio.create_task(one(i))
            inflight.add(t)
            t.add_done_callback(inflight.discard)
            i += 7
        await asyncio.gather(*inflight)
    return {"windows": windows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--load", type=float, default=0.8, help="share of measured capacity (default %(default)s)")
    p.add_argument("--calibrate", type=float, default=10.0, help="seconds to measure capacity")
    p.add_argument("--p99-drift", type=float, default=1.5, help="allowed last/first-minute p99 ratio")
    p.add_argument("--json", help="write the result here")
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelplan.cli", "serve", "--port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        if pin:
            os.sched_setaffinity(proc.pid, {cpus[0]})
            os.sched_setaffinity(0, {cpus[1]})
        assert proc.stdout is not None
        m = re.search(r"listening on (\S+:\d+)", proc.stdout.readline())
        if not m:
            raise SystemExit("server did not start")
        target = m.group(1)
        capacity = asyncio.run(calibrate(target, args.calibrate))
        rate = capacity * args.load
        print(
            f"capacity {capacity:.0f} QPS (mix, open loop, overloaded); soaking at {rate:.0f} QPS, {args.minutes} min"
        )
        result = asyncio.run(soak(target, rate, args.minutes * 60, proc.pid))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    w = result["windows"]
    full = [x for x in w if x["calls"] > 0]
    errors = sum(sum(x["errors"].values()) for x in w)
    skipped = sum(x["skipped"] for x in w)
    first, last = full[0], full[-1]
    drift = last["p99_ms"] / first["p99_ms"] if first["p99_ms"] else float("inf")
    rss_growth = last["rss_mib"] / first["rss_mib"] - 1
    p99_ok = drift <= args.p99_drift or last["p99_ms"] < 10
    ok = errors == 0 and skipped == 0 and p99_ok and rss_growth < 0.10
    summary = {
        "capacity_qps": capacity,
        "rate_qps": rate,
        "errors": errors,
        "skipped": skipped,
        "p99_first_ms": first["p99_ms"],
        "p99_last_ms": last["p99_ms"],
        "p99_drift": drift,
        "rss_first_mib": first["rss_mib"],
        "rss_last_mib": last["rss_mib"],
        "rss_growth": rss_growth,
        "pass": ok,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "summary": summary, **result}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
