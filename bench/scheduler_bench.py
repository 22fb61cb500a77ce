"""SchedulerService latency: RankNodes over many nodes and RightSize over the catalogue.

    .venv/bin/python -m bench.scheduler_bench [--nodes 5000] [--workloads 60] [--rounds 7] [--own-process] [--json PATH]

Each measurement cycles through distinct workloads (model x precision x context x concurrency),
so the p99 is over different calculations, not one repeated request. Node inventories carry
realistic label sets (GPU Feature Discovery, kubelet and cloud labels, ~30 per node) in ~20
device shapes. In-process calls go through SchedulerServicer.rank / right_size with a request
message (as the extender calls it); gRPC calls go over loopback to a real server, started in
this process; with --own-process, also to `accelplan serve` in its own process (a fresh one per
row), from this Python client and from the Go SDK (bench/goclient: what a Go scheduler plugin sees).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from accelplan.client import PlannerClient, prepare_nodes
from accelplan.v1 import models_pb2, scheduler_service_pb2_grpc, scheduling_pb2
from accelplan_server.core import cache
from accelplan_server.core.catalog import load_catalog
from accelplan_server.core.scheduling import labels, rank
from accelplan_server.core.scheduling.labels import KEYS
from accelplan_server.rpc import rank_wire
from accelplan_server.rpc.scheduler import SchedulerServicer
from accelplan_server.runtime.serve import ServerConfig, start
from bench.hostile import start_server

GO_CLIENT = Path(__file__).parent / "goclient"

WIDE_EXTRA = (
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "nvidia.com/cuda.driver.major",
    "nvidia.com/gpu.compute.major",
    "nvidia.com/gpu.present",
    "nvidia.com/mig.capable",
    "feature.node.kubernetes.io/pci-10de.present",
)
"""Labels beside accelplan's own that the codec rows send: 11 a node, more than a small Go map holds."""

SHAPES: list[dict[str, str]] = []
for product, memory, counts in (
    ("NVIDIA-H100-80GB-HBM3", "81559", (8, 4)),
    ("NVIDIA-H200", "143771", (8,)),
    ("NVIDIA-A100-SXM4-80GB", "81920", (8, 4)),
    ("NVIDIA-A100-SXM4-40GB", "40960", (8,)),
    ("NVIDIA-L40S", "46068", (4, 2)),
    ("NVIDIA-L4", "23034", (1, 2, 4)),
    ("NVIDIA-A10G", "23028", (1, 4)),
    ("Tesla-T4", "15360", (1, 4)),
    ("NVIDIA-B200", "183359", (8,)),
):
    for c in counts:
        SHAPES.append(
            {"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(c), "nvidia.com/gpu.memory": memory}
        )
SHAPES.append(
    {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "2x4"}
)
SHAPES.append({"amd.com/gpu.device-id": "74a1", "accelplan.dev/accelerator.count": "8"})


def node_labels(i: int) -> dict[str, str]:
    """A node's labels: its device shape plus the kubelet, cloud and GFD labels a real node carries."""
    labels = {
        "kubernetes.io/hostname": f"node-{i}",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": f"us-east-1{'abc'[i % 3]}",
        "node.kubernetes.io/instance-type": "custom",
        "node-role.kubernetes.io/worker": "",
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.driver.minor": "54",
        "nvidia.com/cuda.runtime.major": "12",
        "nvidia.com/cuda.runtime.minor": "4",
        "nvidia.com/gfd.timestamp": str(1700000000 + i),
        "nvidia.com/gpu.compute.major": "9",
        "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/mig.capable": "false",
        "feature.node.kubernetes.io/cpu-model.vendor_id": "Intel",
        "feature.node.kubernetes.io/kernel-version.full": "6.1.0",
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "pool": f"pool-{i % 7}",
    }
    labels.update(SHAPES[i % len(SHAPES)])
    return labels


def workloads(n: int) -> list[scheduling_pb2.Workload]:
    """n distinct workloads (contexts within each model's maximum)."""
    catalog = load_catalog()
    models = ["llama-3.1-8b", "llama-3.1-70b", "qwen2.5-32b", "mixtral-8x7b", "gemma-2-27b", "qwen2.5-72b"]
    levels = [0, 3, 6, 4, 5]
    contexts = [0, 8192, 32768, 2048]
    out = []
    for m, q, c, conc in itertools.product(models, levels, contexts, (1, 8, 32)):
        if c > catalog.model(m).max_context_length:
            continue
        out.append(
            scheduling_pb2.Workload(
                model=models_pb2.ModelSpec(model_id=m),
                quantization=q,  # type: ignore[arg-type]
                context_length=c,
                concurrency=conc,
            )
        )
    step = max(1, len(out) // n)
    return out[::step][:n]


def node_groups(nodes: list[scheduling_pb2.NodeInventory]) -> list[scheduling_pb2.NodeGroup]:
    """``nodes`` as NodeGroups, one per distinct label set: what a caller that knows its nodes' shapes sends."""
    members: dict[bytes, list[str]] = {}
    for n in nodes:
        body = scheduling_pb2.NodeInventory(labels=n.labels).SerializeToString(deterministic=True)
        members.setdefault(body, []).append(n.name)
    return [
        scheduling_pb2.NodeGroup(inventory=scheduling_pb2.NodeInventory.FromString(body), node_names=names)
        for body, names in members.items()
    ]


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "n": len(s),
        "p50_ms": statistics.median(s) * 1e3,
        "p99_ms": s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3,
        "max_ms": s[-1] * 1e3,
    }


def measure(call: Any, requests: list[Any], rounds: int) -> dict[str, float]:
    """Every call's time (p50/p99/max over all calls), the p99 over distinct workloads of each
    workload's best round (what is left when other processes on a shared machine are not running),
    and the first round alone (each workload seen for the first time: nothing remembered).

    Caches start empty: RankNodes remembers per-shape results by workload (rpc/shape_memo.py),
    so rounds after the first find them, as a scheduler's repeated questions about one pod do.
    """
    for r in requests[:3]:
        call(r)
    cache.set_total_bytes(cache.total_bytes())  # drops every entry, the warm-up's included
    return summarize(time_rounds(call, requests, rounds))


def time_rounds(call: Any, requests: list[Any], rounds: int) -> list[list[float]]:
    """Each request's call times (seconds), round by round: every request once per round."""
    per_request: list[list[float]] = [[] for _ in requests]
    for _ in range(rounds):
        for k, r in enumerate(requests):
            t = time.perf_counter()
            call(r)
            per_request[k].append(time.perf_counter() - t)
    return per_request


def summarize(per_request: list[list[float]]) -> dict[str, float]:
    """``measure``'s figures from each request's call times, round by round (seconds)."""
    result = percentiles([x for xs in per_request for x in xs])
    best = percentiles([min(xs) for xs in per_request])
    result["best_of_rounds_p50_ms"] = best["p50_ms"]
    result["best_of_rounds_p99_ms"] = best["p99_ms"]
    first = percentiles([xs[0] for xs in per_request])
    result["first_round_p50_ms"] = first["p50_ms"]
    result["first_round_p99_ms"] = first["p99_ms"]
    return result


def warm_ups(loads: list[scheduling_pb2.Workload]) -> list[scheduling_pb2.Workload]:
    """Three workloads outside ``loads`` (other contexts): warming a fresh server with them keeps none of ``loads``."""
    out = []
    for i, w in enumerate(loads[:3]):
        warm = scheduling_pb2.Workload()
        warm.CopyFrom(w)
        warm.context_length = 1000 + i
        out.append(warm)
    return out


def own_process(
    method: str, requests: list[Any], warm: list[Any], rounds: int, go_binary: Path | None, codec: str = "sdk"
) -> dict[str, dict[str, float]]:
    """``measure`` against ``accelplan serve`` in its own process (fresh, so nothing is remembered), from this
    process's Python client (result key "python") or, with ``go_binary``, from the Go SDK (bench/goclient;
    ``codec`` sdk, grpc-default, prepared or both: one result per codec, the two codecs' calls interleaved).
    ``codec`` prepared (RankNodes): the nodes serialized once per request before timing (``prepare_nodes``,
    Go's ``PrepareNodes``), each call sending its workload in front of them (``rank_prepared``)."""
    proc, address = start_server(None, [])
    try:
        if go_binary is None and codec == "prepared":  # RankNodes: nodes serialized once per request, untimed
            options = [("grpc.max_receive_message_length", 64 << 20)]
            with PlannerClient(address, timeout=30, options=options) as client:
                prepared = [(r.workload, prepare_nodes(r)) for r in [*warm, *requests]]
                for w, nodes in prepared[: len(warm)]:
                    client.rank_prepared(w, nodes)
                times = time_rounds(lambda p: client.rank_prepared(*p), prepared[len(warm) :], rounds)
                return {"python": summarize(times)}
        if go_binary is None:
            with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
                call = getattr(scheduler_service_pb2_grpc.SchedulerServiceStub(channel), method)
                for r in warm:
                    call(r)
                return {"python": summarize(time_rounds(call, requests, rounds))}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "requests.bin"
            with path.open("wb") as f:
                for r in [*warm, *requests]:
                    body = r.SerializeToString()
                    f.write(struct.pack("<I", len(body)) + body)
            out = Path(tmp) / "times.json"
            command = [str(go_binary), "-server", address, "-method", method, "-requests", str(path)]
            command += ["-warm", str(len(warm)), "-rounds", str(rounds), "-out", str(out), "-codec", codec]
            subprocess.run(command, check=True)
            return {name: summarize(times) for name, times in json.loads(out.read_text()).items()}
    finally:
        proc.kill()
        proc.wait()


def build_go_client(into: Path) -> Path:
    """bench/goclient built with the Go toolchain (the Go SDK through a replace directive)."""
    go = shutil.which("go")
    if go is None:
        raise SystemExit("--go-client needs the Go toolchain on PATH")
    binary = into / "goclient"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_CLIENT, check=True)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--workloads", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default="")
    parser.add_argument(
        "--own-process",
        action="store_true",
        help="also time the gRPC rows against `accelplan serve` in its own process, from this Python client "
        "and from the Go SDK (bench/goclient, built with `go build`)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="run the plain-Python paths, as an install without a C compiler does (the compiled loops "
        "server/setup.py builds switched off in this process: in-process and in-process gRPC rows only)",
    )
    args = parser.parse_args()
    if args.plain and args.own_process:
        parser.error("--plain switches the compiled loops off in this process only; --own-process servers keep them")
    if args.plain:
        labels._compiled = None
        rank._compiled = None
        rank_wire._compiled = None

    catalog = load_catalog()
    servicer = SchedulerServicer(catalog)
    loads = workloads(args.workloads)
    big = [scheduling_pb2.NodeInventory(name=f"node-{i}", labels=node_labels(i)) for i in range(args.nodes)]
    grouped = scheduling_pb2.VERDICT_LAYOUT_GROUPED
    small = big[: args.small]
    rank_big = [scheduling_pb2.RankNodesRequest(workload=w, nodes=big) for w in loads]
    # Over gRPC a caller sends only the labels accelplan reads (labels.KEYS), as the extender's
    # --planner mode does: full label sets for 5,000 nodes exceed the server's 4 MiB message cap.
    slim = [
        scheduling_pb2.NodeInventory(name=n.name, labels={k: v for k, v in n.labels.items() if k in KEYS}) for n in big
    ]
    rank_slim = [scheduling_pb2.RankNodesRequest(workload=w, nodes=slim) for w in loads]
    rank_slim_grouped = [scheduling_pb2.RankNodesRequest(workload=w, nodes=slim, verdict_layout=grouped) for w in loads]
    rank_small = [scheduling_pb2.RankNodesRequest(workload=w, nodes=small) for w in loads]
    # The same 5,000 nodes as node groups, answered with grouped verdicts.
    groups = node_groups(slim)
    rank_groups = [
        scheduling_pb2.RankNodesRequest(workload=w, node_groups=groups, verdict_layout=grouped) for w in loads
    ]
    sizes = [scheduling_pb2.RightSizeRequest(workload=w) for w in loads]

    # Long-lived inputs (the node labels, as a node cache holds them) move out of the collector's
    # view, as `accelplan serve` does with its startup objects (runtime.serve.freeze_startup_objects).
    gc.collect()
    gc.freeze()
    results: dict[str, Any] = {
        "shapes": len(SHAPES),
        "labels_per_node": len(node_labels(0)),
        "distinct_workloads": len(loads),
    }
    dict_big = [(f"node-{i}", node_labels(i)) for i in range(args.nodes)]
    dict_small = dict_big[: args.small]

    def by_labels(nodes: list[tuple[str, dict[str, str]]]) -> Any:
        return lambda w: servicer.rank_labels(w, nodes)

    def by_labels_all_verdicts(nodes: list[tuple[str, dict[str, str]]]) -> Any:
        return lambda w: servicer.rank_labels(w, nodes).verdicts

    def by_cached_shapes(nodes: list[tuple[str, dict[str, str]]]) -> Any:
        names = [n for n, _ in nodes]
        shapes = [servicer.table.shape(labels) for _, labels in nodes]  # a node cache keeps these
        return lambda w: servicer.rank_shapes(w, names, shapes)

    results[f"RankNodes {args.nodes} nodes, in-process (labels as dicts)"] = measure(
        by_labels(dict_big), loads, args.rounds
    )
    results[f"RankNodes {args.small} nodes, in-process (labels as dicts)"] = measure(
        by_labels(dict_small), loads, args.rounds
    )
    results[f"RankNodes {args.nodes} nodes, in-process (labels as dicts, every verdict built)"] = measure(
        by_labels_all_verdicts(dict_big), loads, args.rounds
    )
    results[f"RankNodes {args.nodes} nodes, in-process (node cache: shapes kept per node)"] = measure(
        by_cached_shapes(dict_big), loads, args.rounds
    )
    results[f"RankNodes {args.small} nodes, in-process (node cache: shapes kept per node)"] = measure(
        by_cached_shapes(dict_small), loads, args.rounds
    )
    results[f"RankNodes {args.nodes} nodes, in-process (request message)"] = measure(
        servicer.rank, rank_big, args.rounds
    )
    results[f"RankNodes {args.small} nodes, in-process (request message)"] = measure(
        servicer.rank, rank_small, args.rounds
    )
    results[f"RankNodes {args.nodes} nodes, in-process (request message, labels accelplan reads)"] = measure(
        servicer.rank, rank_slim, args.rounds
    )
    results[f"RankNodes {args.nodes} nodes, in-process (node groups, grouped verdicts)"] = measure(
        servicer.rank, rank_groups, args.rounds
    )
    results["RightSize whole catalogue, in-process"] = measure(servicer.right_size, sizes, args.rounds)

    running = start(ServerConfig(host="127.0.0.1", port=0), catalog=catalog, serve_metrics=False)
    try:
        with grpc.insecure_channel(
            f"127.0.0.1:{running.port}", options=[("grpc.max_receive_message_length", 64 << 20)]
        ) as channel:
            stub = scheduler_service_pb2_grpc.SchedulerServiceStub(channel)
            results[f"RankNodes {args.nodes} nodes, gRPC loopback"] = measure(stub.RankNodes, rank_slim, args.rounds)
            results[f"RankNodes {args.nodes} nodes, gRPC loopback (grouped verdicts)"] = measure(
                stub.RankNodes, rank_slim_grouped, args.rounds
            )
            results[f"RankNodes {args.nodes} nodes, gRPC loopback (node groups, grouped verdicts)"] = measure(
                stub.RankNodes, rank_groups, args.rounds
            )
            results["RightSize whole catalogue, gRPC loopback"] = measure(stub.RightSize, sizes, args.rounds)
    finally:
        running.stop(0)

    if args.own_process:
        with tempfile.TemporaryDirectory() as tmp:
            go_binary = build_go_client(Path(tmp))
            warm = warm_ups(loads)
            forms: list[tuple[str, str, list[Any], list[Any]]] = [
                (
                    f"RankNodes {args.nodes} nodes",
                    "RankNodes",
                    rank_slim,
                    [scheduling_pb2.RankNodesRequest(workload=w, nodes=slim) for w in warm],
                ),
                (
                    f"RankNodes {args.nodes} nodes (grouped verdicts)",
                    "RankNodes",
                    rank_slim_grouped,
                    [scheduling_pb2.RankNodesRequest(workload=w, nodes=slim, verdict_layout=grouped) for w in warm],
                ),
                (
                    f"RankNodes {args.nodes} nodes (node groups, grouped verdicts)",
                    "RankNodes",
                    rank_groups,
                    [
                        scheduling_pb2.RankNodesRequest(workload=w, node_groups=groups, verdict_layout=grouped)
                        for w in warm
                    ],
                ),
                (
                    "RightSize whole catalogue",
                    "RightSize",
                    sizes,
                    [scheduling_pb2.RightSizeRequest(workload=w) for w in warm],
                ),
            ]
            for label, method, requests, warm_requests in forms:
                for client, binary in (("Python", None), ("Go", go_binary)):
                    (found,) = own_process(method, requests, warm_requests, args.rounds, binary).values()
                    results[f"{label}, gRPC to its own process, {client} client"] = found
                    if method == "RankNodes" and not requests[0].node_groups:
                        (found,) = own_process(
                            method, requests, warm_requests, args.rounds, binary, "prepared"
                        ).values()
                        results[f"{label}, gRPC to its own process, {client} client, nodes prepared once"] = found
            # More labels than a small Go map holds: grpc-go's default codec writes them in a random order
            # per message, so nodes of one shape differ in their bytes unless the client sorts them.
            wide = [
                scheduling_pb2.NodeInventory(
                    name=n.name, labels={k: v for k, v in node_labels(i).items() if k in KEYS or k in WIDE_EXTRA}
                )
                for i, n in enumerate(slim)
            ]
            by_codec = own_process(
                "RankNodes",
                [scheduling_pb2.RankNodesRequest(workload=w, nodes=wide, verdict_layout=grouped) for w in loads],
                [scheduling_pb2.RankNodesRequest(workload=w, nodes=wide, verdict_layout=grouped) for w in warm],
                args.rounds,
                go_binary,
                "both",
            )
            for codec, found in by_codec.items():
                results[
                    f"RankNodes {args.nodes} nodes x {len(wide[0].labels)} labels (grouped verdicts), "
                    f"gRPC to its own process, Go client, {codec} codec (calls interleaved)"
                ] = found

    width = max(len(k) for k in results)
    for key, value in results.items():
        if isinstance(value, dict):
            print(
                f"{key:<{width}}  n={value['n']:<4} p50 {value['p50_ms']:6.2f}  p99 {value['p99_ms']:6.2f}  "
                f"max {value['max_ms']:6.2f}  | first round: p50 {value['first_round_p50_ms']:6.2f}  "
                f"p99 {value['first_round_p99_ms']:6.2f}  | best of rounds: p50 {value['best_of_rounds_p50_ms']:6.2f}  "
                f"p99 {value['best_of_rounds_p99_ms']:6.2f}  (ms)"
            )
        else:
            print(f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
