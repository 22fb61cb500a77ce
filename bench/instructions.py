"""Instructions per call, counted by valgrind: a measure the VM's noise cannot move.

    .venv/bin/python -m bench.instructions [--case NAME ...] [--tree PATH] [--reps 2]

Wall times on a shared 2-vCPU VM move 20-40% between runs, more than most changes to a hot path.
Instructions executed are the same from run to run (PYTHONHASHSEED=0), so this runs each case's
calls under ``valgrind --tool=cachegrind --cache-sim=no`` twice, once with no calls and once with
``--reps`` rounds of them, and divides the difference by the calls made. ``--tree`` counts another
checkout's code (its server and client sources on PYTHONPATH), for a before/after pair.

Cases (60 distinct workloads, as bench.scheduler_bench; 5,000 nodes in 18 shapes):
* rank-bytes-per-node / rank-bytes-grouped: ``SchedulerServicer.rank_bytes`` on RankNodes requests
  of the labels accelplan reads, per-node or grouped verdicts, after a first call for each (warm);
* rank-labels-5000: ``rank_labels`` over 5,000 nodes' label dicts (26 labels each), after a first call
  for each workload (warm: the per-node work, what an in-process extender without a node cache pays);
* rank-cold-500: ``rank_shapes`` over 500 nodes with every cache emptied first (a workload's first call);
* right-size-cold: ``right_size`` over the whole catalogue, caches emptied first;
* extender-names-5000 / extender-full-500: the extender's /filter then /prioritize for one pod (as
  bench.extender_bench: 5,000 node names with a warm node cache, or 500 full Node objects; bodies
  as bytes, answers encoded as the server does; nothing remembered between pods), in-process, no HTTP.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

CASES = (
    "rank-bytes-per-node",
    "rank-bytes-grouped",
    "rank-labels-5000",
    "rank-cold-500",
    "right-size-cold",
    "extender-names-5000",
    "extender-full-500",
)
WORKLOADS = 60


def _calls(case: str) -> list[Callable[[], object]]:
    """One round of the case's calls (set-up done here, outside the counted difference)."""
    from accelplan.v1 import scheduling_pb2
    from accelplan_server.core import cache
    from accelplan_server.core.catalog import load_catalog
    from accelplan_server.core.scheduling.labels import KEYS
    from accelplan_server.rpc.scheduler import SchedulerServicer
    from bench.scheduler_bench import node_labels, workloads

    servicer = SchedulerServicer(load_catalog())
    loads = workloads(WORKLOADS)
    if case.startswith("rank-bytes"):
        layout = scheduling_pb2.VERDICT_LAYOUT_GROUPED if case.endswith("grouped") else 0
        slim = [
            scheduling_pb2.NodeInventory(
                name=f"node-{i}", labels={k: v for k, v in node_labels(i).items() if k in KEYS}
            )
            for i in range(5000)
        ]
        raws = [
            scheduling_pb2.RankNodesRequest(workload=w, nodes=slim, verdict_layout=layout).SerializeToString()
            for w in loads
        ]
        for raw in raws:
            servicer.rank_bytes(raw)
        return [lambda raw=raw: servicer.rank_bytes(raw) for raw in raws]

    if case.startswith("extender"):
        return _extender_calls(case)
    if case == "rank-labels-5000":
        nodes = [(f"node-{i}", node_labels(i)) for i in range(5000)]
        for w in loads:
            servicer.rank_labels(w, nodes)
        return [lambda w=w: servicer.rank_labels(w, nodes) for w in loads]

    def cold(call: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            cache.set_total_bytes(cache.total_bytes())  # drops every entry
            return call()

        return run

    if case == "rank-cold-500":
        labels = [node_labels(i) for i in range(500)]
        names = [f"node-{i}" for i in range(500)]
        shapes = [servicer.table.shape(x) for x in labels]
        calls = [cold(lambda w=w: servicer.rank_shapes(w, names, shapes)) for w in loads]
    else:
        requests = [scheduling_pb2.RightSizeRequest(workload=w) for w in loads]
        calls = [cold(lambda r=r: servicer.right_size(r)) for r in requests]
    for call in calls[:3]:
        call()
    return calls


def _extender_calls(case: str) -> list[Callable[[], object]]:
    import orjson

    from accelplan_server.adapters.kubernetes import wire
    from accelplan_server.adapters.kubernetes.extender import Extender
    from accelplan_server.adapters.kubernetes.nodecache import NodeCache
    from accelplan_server.adapters.kubernetes.ranking import LocalRanker, ShapeRanker
    from bench.extender_bench import node, pods

    encode = getattr(wire, "encode", orjson.dumps)  # trees before wire.encode answered with orjson fragments

    cache = None
    if case == "extender-names-5000":
        cached = [node(i) for i in range(5000)]
        cache = NodeCache()
        cache.replace(cached)
        sent: dict[str, object] = {"Nodes": None, "NodeNames": [n["metadata"]["name"] for n in cached]}
    else:
        full = {"metadata": {"resourceVersion": ""}, "items": [node(i) for i in range(500)]}
        sent = {"Nodes": full, "NodeNames": None}
    extender = Extender(ShapeRanker(LocalRanker(), remembered=0), cache)
    sends = [(p, orjson.dumps({"Pod": p, **sent})) for p in pods(WORKLOADS)]

    def call(pod: object, body: bytes) -> object:
        """/filter, then /prioritize of the nodes that passed (its body encoded as kube-scheduler would)."""
        result = extender.filter(body)
        encode(result)
        later = encode({"Pod": pod, "Nodes": result["Nodes"], "NodeNames": result["NodeNames"]})
        return encode(extender.prioritize(later))

    for pod, body in sends[:3]:
        call(pod, body)
    return [lambda pod=pod, body=body: call(pod, body) for pod, body in sends]


def _inner(case: str, reps: int) -> None:
    calls = _calls(case)
    gc.collect()
    gc.disable()  # collections come at instruction counts that differ between the two runs
    for _ in range(reps):
        for call in calls:
            call()


def count(case: str, reps: int, tree: Path) -> float:
    """Instructions per call of ``case`` with ``tree``'s code."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not on PATH (Debian: apt-get install valgrind)")
    env = dict(os.environ, PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(str(tree / p) for p in ("server/src", "client/python/src", "."))
    totals = []
    tool = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    for n in (0, reps):
        out = subprocess.run(
            [*tool, sys.executable, str(Path(__file__).resolve()), "--inner", case, str(n)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
        if found is None:
            raise SystemExit(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
        totals.append(int(found.group(1).replace(",", "")))
    return (totals[1] - totals[0]) / (reps * WORKLOADS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=CASES, help="a case to count (default: all)")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--reps", type=int, default=2, help="rounds of the 60 calls counted")
    parser.add_argument("--inner", nargs=2, metavar=("CASE", "REPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        _inner(args.inner[0], int(args.inner[1]))
        return
    for case in args.case or CASES:
        print(f"{case:<22} {count(case, args.reps, args.tree.resolve()) / 1e6:8.2f} M instructions per call")


if __name__ == "__main__":
    main()
