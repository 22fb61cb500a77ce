"""Floods from issue 9 against a live server: cheap-call p99 and health success with and without each attack.

Starts ``accelplan serve --port 0`` on loopback (or, with --tree, the server of
another checkout, e.g. main before the fix), then for each attack: probes
GetModel (one at a time) and health (every 50 ms) for --seconds while the
attack is on, and prints the numbers beside the quiet baseline. Every attack is
bounded in count and time; nothing leaves loopback.

Attacks:
  half-open   4 connections x 10 GetModel calls with HEADERS and no body, and 16 reflection streams
  heavy       32 distinct 16,384-chip PlanSharding calls in flight (4,096 four-chip TPUs, 405B)
  shapes      6 distinct RankNodes calls in flight, each over 4,000 nodes that are 4,000 device shapes
  rightsize   32 distinct RightSize calls in flight, each sizing every sku up to 64 devices with speed
  unread      100 PlanSharding calls (~0.6 MB answers) on one connection that never reads them
  idle        1,000 TCP connections that never say anything

Run: .venv/bin/python -m bench.hostile [--seconds 3] [--only heavy,idle] [--tree /work/main]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import hostile_load as attack


def start_server(tree: Path | None, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    """``accelplan serve --port 0`` from this checkout, or from ``tree`` (its .venv, else its sources on this one)."""
    python = sys.executable
    env = dict(os.environ)
    if tree is not None:
        if (tree / ".venv/bin/python").exists():
            python = str(tree / ".venv/bin/python")
        else:
            env["PYTHONPATH"] = f"{tree / 'server/src'}:{tree / 'client/python/src'}"
    proc = subprocess.Popen(
        [python, "-m", "accelplan.cli", "serve", "--port", "0", "--log-level", "ERROR", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tree or None,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, f"{m.group(1)}:{m.group(2)}"


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, MB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def half_open(address: str) -> Callable[[], None]:
    socks = [attack.half_open(address, attack.PLANNER + "GetModel", 10) for _ in range(4)]
    socks.append(attack.half_open(address, attack.REFLECTION, 16))
    return lambda: attack.close_all(socks)


def heavy(address: str) -> Callable[[], None]:
    cm = attack.heavy_in_flight(address, 32, timeout=60)
    cm.__enter__()
    return lambda: cm.__exit__(None, None, None)


def shapes(address: str) -> Callable[[], None]:
    cm = attack.heavy_in_flight(
        address, 6, timeout=60, method=attack.SCHEDULER + "RankNodes", build=lambda i: attack.many_shapes_rank(i, 4000)
    )
    cm.__enter__()
    return lambda: cm.__exit__(None, None, None)


def rightsize(address: str) -> Callable[[], None]:
    cm = attack.heavy_in_flight(
        address, 32, timeout=60, method=attack.SCHEDULER + "RightSize", build=attack.heavy_right_size
    )
    cm.__enter__()
    return lambda: cm.__exit__(None, None, None)


def unread(address: str) -> Callable[[], None]:
    payload = attack.heavy_plan(0).SerializeToString()
    sock = attack.unread(address, attack.PLANNER + "PlanSharding", payload, 100, seconds=10)
    return lambda: attack.close_all([sock])


def idle(address: str) -> Callable[[], None]:
    socks = attack.idle(address, 1000)
    print(f"  (idle: {len(socks)} connections opened)", flush=True)
    return lambda: attack.close_all(socks)


ATTACKS: dict[str, Callable[[str], Callable[[], None]]] = {
    "half-open": half_open,
    "heavy": heavy,
    "shapes": shapes,
    "rightsize": rightsize,
    "unread": unread,
    "idle": idle,
}


def row(name: str, p: attack.Probe, rss: float) -> dict[str, Any]:
    lat = sorted(p.latencies_ms)
    return {
        "attack": name,
        "health": f"{p.health_ok}/{p.health_total}",
        "cheap_calls": len(lat),
        "cheap_errors": p.cheap_errors,
        "p50_ms": lat[len(lat) // 2] if lat else float("inf"),
        "p99_ms": p.p99(),
        "max_ms": lat[-1] if lat else float("inf"),
        "rss_mb": rss,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0, help="probe length per attack (default %(default)s)")
    p.add_argument("--only", help="comma-separated attack names (default: all)")
    p.add_argument("--tree", type=Path, help="run the server of this checkout (its .venv) instead")
    p.add_argument("--serve-arg", action="append", default=[], help="extra `accelplan serve` flag (repeatable)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(ATTACKS)
    proc, address = start_server(args.tree, args.serve_arg)
    rows = []
    try:
        attack.probe(address, 1.0)  # warm up
        rows.append(row("none (quiet)", attack.probe(address, args.seconds), rss_mb(proc.pid)))
        for name in names:
            print(f"attack: {name}", flush=True)
            t0 = time.monotonic()
            stop = ATTACKS[name](address)
            try:
                time.sleep(0.3)
                rows.append(row(name, attack.probe(address, args.seconds), rss_mb(proc.pid)))
            finally:
                stop()
            rows[-1]["attack_s"] = time.monotonic() - t0
            time.sleep(1.0)
            rows.append(row(f"after {name}", attack.probe(address, 1.0), rss_mb(proc.pid)))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    where = f"server from {args.tree}" if args.tree else "this checkout's server"
    print(f"\n{where} on {address}; {os.cpu_count()} CPUs; {args.seconds:g} s probe per attack")
    print(
        f"{'attack':18s} {'health ok':>10s} {'GetModel':>8s} {'errors':>6s} "
        f"{'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'RSS MB':>7s}"
    )
    for r in rows:
        print(
            f"{r['attack']:18s} {r['health']:>10s} {r['cheap_calls']:8d} {r['cheap_errors']:6d} "
            f"{r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.1f} {r['rss_mb']:7.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
