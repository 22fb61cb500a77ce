"""Kubernetes extender latency: filter + prioritize round trips over HTTP on loopback.

    .venv/bin/python -m bench.extender_bench [--nodes 500] [--cached-nodes 5000] [--pods 200] [--rounds 3] [--json PATH]

Two cases, as issue 10 sets them:
- full Node objects (nodeCacheCapable: false): each /filter carries --nodes complete v1.Node objects
  (~60 labels, conditions, addresses, images: what kube-scheduler sends), /prioritize the nodes that
  passed;
- node names (nodeCacheCapable: true): each /filter carries --cached-nodes names, the extender reads
  shapes from a warm node cache.
Every pod is a distinct workload (model x precision x context x concurrency x GPUs), so the p99 is
over different RankNodes calls; the bench server remembers no answer (ShapeRanker(remembered=0)), so
even the prioritize after a filter ranks afresh (the shipped extender remembers it: cheaper). Each
pod runs --rounds times; reported are percentiles over all calls and, since this 2-core machine is
shared, the best round per pod (p99 over distinct pods of each pod's best filter+prioritize).
The server is the extender's aiohttp application (make_app, the in-process SchedulerServicer) in
its own process; for the node-name case its NodeCache is filled from the same Node objects the
watch would deliver (``serve`` below), since a 5,000-node API server is out of reach here. Times are
client-side (send the body, read the whole answer), beside the server's handler time and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import requests

SHAPES: list[dict[str, str]] = []
for product, memory, family, counts in (
    ("NVIDIA-H100-80GB-HBM3", "81559", "hopper", (8, 4)),
    ("NVIDIA-H200", "143771", "hopper", (8,)),
    ("NVIDIA-A100-SXM4-80GB", "81920", "ampere", (8, 4)),
    ("NVIDIA-A100-SXM4-40GB", "40960", "ampere", (8,)),
    ("NVIDIA-L40S", "46068", "ada-lovelace", (4, 2)),
    ("NVIDIA-L4", "23034", "ada-lovelace", (1, 2, 4, 8)),
    ("NVIDIA-A10G", "23028", "ampere", (1, 4)),
    ("Tesla-T4", "15360", "turing", (1, 4)),
    ("NVIDIA-B200", "183359", "blackwell", (8,)),
):
    for c in counts:
        SHAPES.append(
            {
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(c),
                "nvidia.com/gpu.memory": memory,
                "nvidia.com/gpu.family": family,
            }
        )
SHAPES.append({"amd.com/gpu.device-id": "74a1", "amd.com/gpu.vram": "192G", "amd.com/gpu.count": "8"})


def node(i: int) -> dict[str, Any]:
    """A complete v1.Node as kube-scheduler sends it: ~60 labels, status with conditions and images."""
    shape = SHAPES[i % len(SHAPES)]
    name = f"gpu-node-{i:05d}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "p5.48xlarge",
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": f"us-east-1{'abcd'[i % 4]}",
        "failure-domain.beta.kubernetes.io/region": "us-east-1",
        "failure-domain.beta.kubernetes.io/zone": f"us-east-1{'abcd'[i % 4]}",
        "topology.ebs.csi.aws.com/zone": f"us-east-1{'abcd'[i % 4]}",
        "node-role.kubernetes.io/worker": "",
        "eks.amazonaws.com/nodegroup": f"gpu-{i % 12}",
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup-image": "ami-0123456789abcdef0",
        "k8s.io/cloud-provider-aws": "0123456789abcdef",
        "karpenter.sh/capacity-type": "on-demand",
        "pool": f"pool-{i % 7}",
        "team": f"team-{i % 5}",
        "nvidia.com/cuda.driver-version.full": "550.54.15",
        "nvidia.com/cuda.driver-version.major": "550",
        "nvidia.com/cuda.driver-version.minor": "54",
        "nvidia.com/cuda.driver-version.revision": "15",
        "nvidia.com/cuda.driver.major": "550",
        "nvidia.com/cuda.driver.minor": "54",
        "nvidia.com/cuda.driver.rev": "15",
        "nvidia.com/cuda.runtime-version.full": "12.4",
        "nvidia.com/cuda.runtime-version.major": "12",
        "nvidia.com/cuda.runtime-version.minor": "4",
        "nvidia.com/cuda.runtime.major": "12",
        "nvidia.com/cuda.runtime.minor": "4",
        "nvidia.com/gfd.timestamp": str(1700000000 + i),
        "nvidia.com/gpu.compute.major": "9",
        "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/gpu.deploy.container-toolkit": "true",
        "nvidia.com/gpu.deploy.dcgm": "true",
        "nvidia.com/gpu.deploy.dcgm-exporter": "true",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/gpu.deploy.driver": "pre-installed",
        "nvidia.com/gpu.deploy.gpu-feature-discovery": "true",
        "nvidia.com/gpu.deploy.node-status-exporter": "true",
        "nvidia.com/gpu.deploy.operator-validator": "true",
        "nvidia.com/gpu.machine": "p5.48xlarge",
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/mig.capable": "false",
        "nvidia.com/mps.capable": "false",
        "feature.node.kubernetes.io/cpu-cpuid.AVX512F": "true",
        "feature.node.kubernetes.io/cpu-hardware_multithreading": "true",
        "feature.node.kubernetes.io/cpu-model.family": "6",
        "feature.node.kubernetes.io/cpu-model.id": "143",
        "feature.node.kubernetes.io/cpu-model.vendor_id": "Intel",
        "feature.node.kubernetes.io/kernel-version.full": "6.1.0-1024-aws",
        "feature.node.kubernetes.io/kernel-version.major": "6",
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID": "22.04",
        **shape,
    }
    gpus = shape.get("nvidia.com/gpu.count") or shape.get("amd.com/gpu.count") or "0"
    resource = "amd.com/gpu" if "amd.com/gpu.count" in shape else "nvidia.com/gpu"
    resources = {"cpu": "192", "memory": "2097152Mi", "pods": "110", "ephemeral-storage": "3844Gi", resource: gpus}
    now = "2026-12-01T10:00:00Z"
    conditions = [
        {"type": t, "status": s, "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": r, "message": m}
        for t, s, r, m in (
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        )
    ]
    images = [
        {"names": [f"registry.example/team/image-{j}@sha256:{j:064x}", f"registry.example/team/image-{j}:v{j}"],
         "sizeBytes": 100_000_000 + j}
        for j in range(12)
    ]  # fmt: skip
    return {
        "metadata": {
            "name": name,
            "uid": f"{i:08x}-0000-4000-8000-000000000000",
            "resourceVersion": str(100000 + i),
            "creationTimestamp": now,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "nfd.node.kubernetes.io/feature-labels": "cpu-cpuid.AVX512F,cpu-hardware_multithreading",
            },
        },
        "spec": {"providerID": f"aws:///us-east-1a/i-{i:017x}", "podCIDR": f"10.{i // 256 % 256}.{i % 256}.0/24"},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{i // 256 % 256}.{i % 256}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}", "systemUUID": f"{i:032x}", "bootID": f"{i:032x}",
                "kernelVersion": "6.1.0-1024-aws", "osImage": "Ubuntu 22.04.4 LTS",
                "containerRuntimeVersion": "containerd://1.7.12", "kubeletVersion": "v1.32.13",
                "kubeProxyVersion": "v1.32.13", "operatingSystem": "linux", "architecture": "amd64",
            },
            "images": images,
        },
    }  # fmt: skip


def pods(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n pods with distinct workloads (annotations) and GPU counts."""
    models = ["llama-3.1-8b", "llama-3.1-70b", "qwen2.5-32b", "mixtral-8x7b", "gemma-2-27b", "qwen2.5-72b", "70B"]
    combos = list(itertools.product(models, ["bf16", "fp8", "int8", "int4"], ["2048", "4096", "8192"],
                                    ["1", "8", "32"], [1, 2, 4, 8]))  # fmt: skip
    random.Random(seed).shuffle(combos)
    out = []
    for k, (model, quant, context, concurrency, gpus) in enumerate(combos[:n]):
        annotations = {
            "accelplan.dev/model": model,
            "accelplan.dev/quantization": quant,
            "accelplan.dev/context-length": context,
            "accelplan.dev/concurrency": concurrency,
        }
        out.append(
            {
                "metadata": {"name": f"serve-{k}", "namespace": "inference", "uid": f"pod-{k}",
                             "annotations": annotations, "labels": {"app": "vllm"}},
                "spec": {
                    "schedulerName": "default-scheduler",
                    "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.6.3",
                                    "resources": {"limits": {"nvidia.com/gpu": str(gpus), "cpu": "8"}}}],
                },
                "status": {"phase": "Pending"},
            }
        )  # fmt: skip
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "n": len(s),
        "p50_ms": round(statistics.median(s) * 1e3, 2),
        "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1e3, 2),
        "max_ms": round(s[-1] * 1e3, 2),
    }


def serve(nodes_file: str | None) -> None:
    """The extender's application over the in-process servicer; with a node file, a warm NodeCache."""
    from aiohttp import web

    from accelplan_server.adapters.kubernetes.extender import Extender
    from accelplan_server.adapters.kubernetes.nodecache import NodeCache
    from accelplan_server.adapters.kubernetes.ranking import LocalRanker, ShapeRanker
    from accelplan_server.adapters.kubernetes.server import make_app, run_loop

    cache = None
    if nodes_file:
        cache = NodeCache()
        cache.replace(orjson.loads(Path(nodes_file).read_bytes()))
    import gc

    gc.collect()  # as `accelplan extender` does once the catalogue (and node list) is loaded
    gc.freeze()
    try:  # as `accelplan extender` does (trees from before runtime.allocator run without it)
        from accelplan_server.adapters.kubernetes.server import MAX_BODY_BYTES
        from accelplan_server.runtime import allocator

        allocator.reuse_large_blocks(MAX_BODY_BYTES)
    except ImportError:
        pass

    handler_seconds: dict[str, list[float]] = {"filter": [], "prioritize": [], "filter_cpu": [], "prioritize_cpu": []}

    @web.middleware
    async def timed(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/bench-stats":
            return web.json_response({k: percentiles(v) for k, v in handler_seconds.items() if v})
        t, cpu = time.perf_counter(), time.thread_time()
        response: web.StreamResponse = await handler(request)
        handler_seconds[request.path.strip("/")].append(time.perf_counter() - t)
        handler_seconds[request.path.strip("/") + "_cpu"].append(time.thread_time() - cpu)
        return response

    async def run() -> int:
        app = make_app(Extender(ShapeRanker(LocalRanker(), remembered=0), cache))
        app.middlewares.append(timed)
        app.router.add_get("/bench-stats", lambda r: web.Response())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"listening on 127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()
        return 0

    run_loop(run())  # uvloop when installed, as `accelplan extender` runs


def start_server(nodes_file: str | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "bench.extender_bench", "serve"] + (["--nodes-file", nodes_file] if nodes_file else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    m = re.search(r"listening on (\S+)", proc.stdout.readline())
    assert m, "bench server did not start"
    return proc, f"http://{m.group(1)}"


class Client:
    """One keep-alive HTTP/1.1 connection (http.client: reads an answer in one call, as Go's client does;
    requests reads bodies in 10 KB chunks, which adds a Python loop per answer to the round trip)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port))

    def post(self, path: str, body: bytes) -> bytes:
        self.conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {data[:200]!r}")
        return data


def run_case(url: str, bodies: list[dict[str, Any]], names_only: bool, rounds: int) -> dict[str, Any]:
    client = Client(url)
    encoded = [orjson.dumps(b) for b in bodies]
    for body in encoded[:10]:  # warm-up: connections, imports, first-call caches
        client.post("/filter", body)
    filt: list[float] = []
    prio: list[float] = []
    both: list[float] = []
    best: dict[int, float] = {}
    passed = []
    for _ in range(rounds):
        for k, (args, body) in enumerate(zip(bodies[10:], encoded[10:], strict=True)):
            t0 = time.perf_counter()
            answer = client.post("/filter", body)
            t1 = time.perf_counter()
            result = orjson.loads(answer)  # kube-scheduler decodes it too, but that is not the extender's time
            assert not result["Error"], result["Error"]
            if names_only:
                nxt = {"Pod": args["Pod"], "Nodes": None, "NodeNames": result["NodeNames"]}
                passed.append(len(result["NodeNames"]))
            else:
                nxt = {"Pod": args["Pod"], "Nodes": result["Nodes"], "NodeNames": None}
                passed.append(len(result["Nodes"]["items"]))
            prio_body = orjson.dumps(nxt)
            t2 = time.perf_counter()
            client.post("/prioritize", prio_body)
            t3 = time.perf_counter()
            filt.append(t1 - t0)
            prio.append(t3 - t2)
            both.append((t1 - t0) + (t3 - t2))
            best[k] = min(best.get(k, float("inf")), both[-1])
    server = requests.get(
        f"{url}/bench-stats", timeout=10
    ).json()  # handler time in the server: body read to answer built
    return {
        "filter_plus_prioritize_best_of_rounds": percentiles(list(best.values())),
        "filter_plus_prioritize": percentiles(both),
        "filter": percentiles(filt),
        "prioritize": percentiles(prio),
        "server_filter_handler": server["filter"],
        "server_prioritize_handler": server["prioritize"],
        # CPU the server's thread spent per call (body read, decode, rank, encode): what contention cannot inflate
        "server_filter_cpu": server["filter_cpu"],
        "server_prioritize_cpu": server["prioritize_cpu"],
        "body_bytes": len(encoded[0]),
        "nodes_passing_median": statistics.median(passed),
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve")
    s.add_argument("--nodes-file")
    parser.add_argument("--nodes", type=int, default=500, help="full Node objects per filter")
    parser.add_argument("--cached-nodes", type=int, default=5000, help="node names per filter (warm cache)")
    parser.add_argument("--pods", type=int, default=200, help="distinct pods (workloads) per case")
    parser.add_argument("--rounds", type=int, default=3, help="times each pod is sent")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.nodes_file)
        return

    pod_list = pods(args.pods + 10)
    results: dict[str, Any] = {}
    full = {"metadata": {"resourceVersion": ""}, "items": [node(i) for i in range(args.nodes)]}
    proc, url = start_server(None)
    try:
        results["full_nodes"] = run_case(
            url, [{"Pod": p, "Nodes": full, "NodeNames": None} for p in pod_list], False, args.rounds
        )
    finally:
        proc.terminate()
        proc.wait()
    results["full_nodes"]["nodes"] = args.nodes

    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cached = [node(i) for i in range(args.cached_nodes)]
        f.write(orjson.dumps(cached))
        f.flush()
        names = [n["metadata"]["name"] for n in cached]
        proc, url = start_server(f.name)
        try:
            results["node_names"] = run_case(
                url, [{"Pod": p, "Nodes": None, "NodeNames": names} for p in pod_list], True, args.rounds
            )
        finally:
            proc.terminate()
            proc.wait()
    results["node_names"]["nodes"] = args.cached_nodes
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
