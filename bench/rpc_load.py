"""Closed-loop load on loopback: QPS, p50 and p99 per RPC at each concurrency, as ratios to a no-op RPC.

One server process is started (or --target names a running one) and every RPC
is measured against it in the same run, each between two half-length runs of
the no-op (no-op, RPC, no-op), so the ratios compare like with like even when
the machine's speed drifts. The client runs in its own process; with --pin (the
default on a machine with 2+ cores) the server is pinned to CPU 0 and the
client to CPU 1 so that they do not take turns on one core. The client sends
pre-serialized requests and does not parse responses (identity serializers),
to spend as little CPU as it can.

Examples:
  .venv/bin/python -m bench.rpc_load                       # accelplan serve, concurrency 1 and 64, 3 s each
  .venv/bin/python -m bench.rpc_load --mode aio            # bench/aio_server.py (handlers on threads)
  .venv/bin/python -m bench.rpc_load --workers 2 --no-pin  # accelplan serve --workers 2
  .venv/bin/python -m bench.rpc_load --only "List,Plan" --seconds 2 --json out.json

Every loop is bounded: --seconds per measurement and --max-calls per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from bench.workload import CALLS, NOOP, Call, by_label


@dataclass
class Result:
    label: str
    concurrency: int
    calls: int
    errors: int
    seconds: float
    qps: float
    p50_ms: float
    p99_ms: float
    server_cpu: float = float("nan")
    """Server CPU seconds per wall second during the measurement (1.0 = one core busy)."""
    ratio: float = 0.0
    noop_qps: float = float("nan")
    """The no-op's QPS measured around this RPC (half before, half after); the ratio's denominator."""


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` and their children's threads (workers: the parent's direct children too)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    seen = set()
    for pid in pids:
        family = [pid]
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                family += [int(c) for c in f.read().split()]
        except OSError:
            pass
        for q in family:
            if q in seen:
                continue
            seen.add(q)
            try:
                with open(f"/proc/{q}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
    return total / tick


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


async def _measure(
    channel: grpc.aio.Channel,
    call: Call,
    concurrency: int,
    seconds: float,
    max_calls: int,
    timeout: float,
    server_pids: list[int],
) -> Result:
    method = channel.unary_unary(call.path, request_serializer=None, response_deserializer=None)
    payloads = [call.request.SerializeToString()] + [v.SerializeToString() for v in call.variants]
    sent = 0
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0

    async def worker() -> None:
        nonlocal errors, sent
        while time.perf_counter() < stop_at and len(latencies) < max_calls:
            payload = payloads[sent % len(payloads)]
            sent += 1
            t0 = time.perf_counter()
            try:
                await method(payload, timeout=timeout)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)

    # Warm up (connections, caches, the server's thread pool), then measure.
    stop_at = time.perf_counter() + min(0.5, seconds / 4)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.clear()
    errors = 0
    cpu0 = cpu_seconds(server_pids)
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(server_pids) - cpu0) / elapsed if server_pids else float("nan")
    latencies.sort()
    return Result(
        call.label,
        concurrency,
        len(latencies),
        errors,
        elapsed,
        len(latencies) / elapsed,
        percentile(latencies, 0.50) * 1e3,
        percentile(latencies, 0.99) * 1e3,
        cpu,
    )


async def _client(
    target: str,
    labels: list[str],
    concurrencies: list[int],
    seconds: float,
    max_calls: int,
    rounds: int,
    server_pids: list[int],
) -> list[dict[str, Any]]:
    calls = [c for c in CALLS if c.label in labels]
    results: list[Result] = []
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
    ) as channel:
        await channel.channel_ready()
        for call in calls:  # every request must be answered OK before it is timed
            call.response.FromString(
                await channel.unary_unary(call.path, request_serializer=None, response_deserializer=None)(
                    call.request.SerializeToString(), timeout=30
                )
            )
        for concurrency in concurrencies:
            for r in range(rounds):
                for call in calls:
                    if call.label == NOOP.label:
                        res = await _measure(channel, call, concurrency, seconds, max_calls, 30, server_pids)
                    else:
                        # Side by side: the no-op for half as long just before and just after the RPC, so a
                        # slow spell on a shared machine weighs on both sides of the ratio.
                        noop = next(c for c in calls if c.label == NOOP.label)
                        before = await _measure(channel, noop, concurrency, seconds / 2, max_calls, 30, [])
                        res = await _measure(channel, call, concurrency, seconds, max_calls, 30, server_pids)
                        after = await _measure(channel, noop, concurrency, seconds / 2, max_calls, 30, [])
                        res.noop_qps = (before.calls + after.calls) / (before.seconds + after.seconds)
                    res.label = call.label if rounds == 1 else f"{call.label} #{r + 1}"
                    results.append(res)
    return [asdict(r) for r in results]


def _client_process(conn: Any, cpu: int | None, args: tuple[Any, ...]) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        conn.send(("ok", asyncio.run(_client(*args))))
    except Exception as e:  # report to the parent instead of dying silently
        conn.send(("error", repr(e)))
    conn.close()


def run_client(
    target: str, calls: list[Call], args: argparse.Namespace, cpu: int | None, server_pids: list[int]
) -> list[Result]:
    """Run the load in a separate (spawned) process; returns its results."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    proc = ctx.Process(
        target=_client_process,
        args=(
            child,
            cpu,
            (
                target,
                [c.label for c in calls],
                concurrencies,
                args.seconds,
                args.max_calls,
                args.rounds,
                server_pids,
            ),
        ),
    )
    proc.start()
    budget = (2 * args.seconds + 2.0) * len(calls) * len(concurrencies) * args.rounds + 60  # no-op around each RPC
    if not parent.poll(budget):
        proc.kill()
        raise SystemExit("load client timed out")
    status, payload = parent.recv()
    proc.join(10)
    if status != "ok":
        raise SystemExit(f"load client failed: {payload}")
    return [Result(**r) for r in payload]


def start_server(args: argparse.Namespace, cpus: set[int] | None) -> tuple[subprocess.Popen[str], str]:
    if args.mode == "aio":
        cmd = [sys.executable, "-m", "bench.aio_server", "--port", "0"]
    else:
        cmd = [sys.executable, "-m", "accelplan.cli", "serve", "--port", str(args.port), "--log-level", "WARNING"]
        if args.workers > 1:
            cmd += ["--workers", str(args.workers)]
        if args.max_workers:
            cmd += ["--max-workers", str(args.max_workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    if cpus is not None:
        os.sched_setaffinity(proc.pid, cpus)  # workers fork after this and inherit it
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, f"{m.group(1)}:{m.group(2)}"


def add_ratios(results: list[Result]) -> None:
    """Each RPC's QPS over the no-op's measured around it (the no-op's own rows: 1)."""
    for r in results:
        r.ratio = 1.0 if r.label.startswith(NOOP.label) else r.qps / r.noop_qps


def print_table(results: list[Result], title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'RPC':42s} {'conc':>4s} {'calls':>7s} {'err':>4s} {'QPS':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'srv CPU':>7s} {'/no-op':>7s}"
    )
    for r in results:
        print(
            f"{r.label:42s} {r.concurrency:4d} {r.calls:7d} {r.errors:4d} {r.qps:8.0f} "
            f"{r.p50_ms:8.3f} {r.p99_ms:8.3f} {r.server_cpu:7.2f} {r.ratio:7.2f}"
        )


def summarize(results: list[Result]) -> list[Result]:
    """Median over rounds of each (RPC, concurrency): QPS, p50, p99, server CPU, and the per-round ratio."""
    groups: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        groups.setdefault((r.label.split(" #")[0], r.concurrency), []).append(r)
    out = []
    for (label, conc), rs in groups.items():
        out.append(
            Result(
                label,
                conc,
                sum(r.calls for r in rs),
                sum(r.errors for r in rs),
                sum(r.seconds for r in rs),
                statistics.median(r.qps for r in rs),
                statistics.median(r.p50_ms for r in rs),
                statistics.median(r.p99_ms for r in rs),
                statistics.median(r.server_cpu for r in rs),
                statistics.median(r.ratio for r in rs),
                statistics.median(r.noop_qps for r in rs),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", help="measure a running server instead of starting one (host:port)")
    p.add_argument(
        "--mode",
        choices=["sync", "aio"],
        default="sync",
        help="server to start: sync runs `accelplan serve` (grpc.aio since issue 9, whatever the name), "
        "aio runs bench/aio_server.py (default sync)",
    )
    p.add_argument("--workers", type=int, default=1, help="accelplan serve --workers N")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--max-workers", type=int, default=0, help="handler threads per server process (default: serve's)")
    p.add_argument("--concurrency", default="1,64", help="comma-separated (default %(default)s)")
    p.add_argument("--seconds", type=float, default=3.0, help="per measurement (default %(default)s)")
    p.add_argument("--max-calls", type=int, default=200_000, help="cap per measurement")
    p.add_argument("--rounds", type=int, default=1, help="repeat every measurement, interleaved")
    p.add_argument("--only", help="comma-separated label prefixes; the no-op is always included")
    p.add_argument("--pin", dest="pin", action="store_true", default=None, help="server on CPU 0, client on CPU 1")
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("-v", "--verbose", action="store_true", help="with --rounds, print every round too")
    args = p.parse_args(argv)
    calls = by_label(args.only)
    if NOOP not in calls:
        calls = [NOOP, *calls]
    cpus = sorted(os.sched_getaffinity(0))
    pin = args.pin if args.pin is not None else (len(cpus) >= 2 and args.workers == 1 and not args.target)
    server = None
    try:
        if args.target:
            target = args.target
        else:
            server, target = start_server(args, {cpus[0]} if pin else None)
        results = run_client(target, calls, args, cpus[1] if pin else None, [server.pid] if server else [])
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    add_ratios(results)
    where = args.target or f"{args.mode} server" + (f", {args.workers} workers" if args.workers > 1 else "")
    pinning = "server CPU 0, client CPU 1" if pin else "not pinned"
    title = f"{where}; {len(cpus)} CPUs ({pinning}); {args.seconds:g} s per measurement"
    if args.rounds > 1:
        if args.verbose:
            print_table(results, title + "; every round")
        print_table(summarize(results), title + f"; median of {args.rounds} interleaved rounds")
    else:
        print_table(results, title)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "argv": sys.argv,
                    "mode": args.mode,
                    "workers": args.workers,
                    "pinned": pin,
                    "results": [asdict(r) for r in results],
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
