"""Throughput with 1 and N server processes behind one multi-address target, and how calls split.

Starts N ``accelplan serve --host 127.0.0.1 --port 0 --metrics-port 0`` processes, then a client
process with the SDKs' default policy (``round_robin`` over ``ipv4:127.0.0.1:A,127.0.0.1:B,...``)
drives a closed loop at a fixed concurrency for a fixed time; each server's own
``accelplan_rpc_requests_total`` counter says how many calls it answered. Nothing is pinned.

  .venv/bin/python -m bench.replicas --replicas 1,3 --seconds 5 --concurrency 64

Bounded: --seconds per measurement and at most --max-calls calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

import grpc

from bench.workload import by_label

SERVE = [sys.executable, "-m", "accelplan.cli", "serve"]
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def start(n: int) -> list[tuple[subprocess.Popen[str], int, int]]:
    """N servers: (process, gRPC port, metrics port)."""
    out = []
    for _ in range(n):
        p = subprocess.Popen(
            [*SERVE, "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdout is not None
        port = int(re.search(r":(\d+)", p.stdout.readline()).group(1))  # type: ignore[union-attr]
        metrics = int(re.search(r":(\d+)/metrics", p.stdout.readline()).group(1))  # type: ignore[union-attr]
        out.append((p, port, metrics))
    return out


def served(metrics_port: int) -> float:
    """Calls this server answered OK."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        page = r.read().decode()
    pattern = r'^accelplan_rpc_requests_total\{[^}]*code="OK"[^}]*\} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, page, re.M))


async def _load(target: str, label: str, concurrency: int, seconds: float, max_calls: int) -> tuple[int, float]:
    call = by_label(label)[-1]
    body = call.request.SerializeToString()
    async with grpc.aio.insecure_channel(target, options=[("grpc.service_config", SERVICE_CONFIG)]) as ch:
        method = ch.unary_unary(call.path, request_serializer=None, response_deserializer=None)
        for _ in range(concurrency):  # warm every subchannel
            await method(body, timeout=30)
        done = 0
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < end and done < max_calls:
                await method(body, timeout=30)
                done += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done, time.monotonic() - t0


def _client(conn: Any, *args: Any) -> None:
    conn.send(asyncio.run(_load(*args)))
    conn.close()


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    servers = start(n)
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port, _ in servers)
        before = [served(m) for _, _, m in servers]
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        load = (target, args.rpc, args.concurrency, args.seconds, args.max_calls)
        proc = ctx.Process(target=_client, args=(child, *load))
        proc.start()
        calls, elapsed = parent.recv()
        proc.join()
        split = [int(served(m) - b) for (_, _, m), b in zip(servers, before, strict=True)]
    finally:
        for p, _, _ in servers:
            p.terminate()
        for p, _, _ in servers:
            p.wait(30)
    return {"replicas": n, "calls": calls, "seconds": elapsed, "qps": calls / elapsed, "split": split}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replicas", default="1,3", help="comma-separated server counts (default %(default)s)")
    p.add_argument("--rpc", default="PlanSharding (8 devices)", help="workload label (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--max-calls", type=int, default=200_000)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    rows = [measure(int(n), args) for n in args.replicas.split(",")]
    print(f"{args.rpc}, concurrency {args.concurrency}, {args.seconds:g} s, round_robin client, not pinned")
    for r in rows:
        print(f"{r['replicas']} process(es): {r['qps']:8.0f} QPS  ({r['calls']} calls; per server {r['split']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
