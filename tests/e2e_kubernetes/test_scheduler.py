"""The extender driven by the real kube-scheduler against a real kube-apiserver and etcd.

Nodes: ``h100-a`` and ``h100-b`` with 4 x H100-80GB each, ``l4`` with 8 x L4 (24 GB), ``cpu`` with no GPU.
Llama 3.1 70B at BF16 needs ~141 GB of weights: 4 H100s hold it (35 GB each), 4 L4s
(96 GB together) cannot, so the default scheduler, which prefers the emptier L4
node, must be overruled by the extender. Llama 3.1 8B at BF16 (16 GB) fits on two
L4s, so those pods are limited only by the GPU count the scheduler keeps.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import launch_server
from tests.e2e_kubernetes.cluster import ControlPlane, extender, free_port, scheduler, scheduler_config

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kubernetes,
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),  # kube-scheduler's own cert
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "scheduler-extender" / "extender.yaml"

COMMON = {
    "kubernetes.io/arch": "amd64",
    "kubernetes.io/os": "linux",
    "node.kubernetes.io/instance-type": "e2e",
    "nvidia.com/gpu.present": "true",
    "nvidia.com/cuda.driver.major": "550",
    "nvidia.com/gpu.compute.major": "9",
    "nvidia.com/gpu.deploy.device-plugin": "true",
}
H100 = {
    **COMMON,
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/gpu.count": "4",
    "nvidia.com/gpu.memory": "81559",
    "nvidia.com/gpu.family": "hopper",
}
L4 = {
    **COMMON,
    "nvidia.com/gpu.product": "NVIDIA-L4",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.memory": "23034",
    "nvidia.com/gpu.family": "ada-lovelace",
    "nvidia.com/gpu.compute.major": "8",
}
BIG = {"accelplan.dev/model": "llama-3.1-70b", "accelplan.dev/quantization": "bf16"}
SMALL = {"accelplan.dev/model": "llama-3.1-8b", "accelplan.dev/quantization": "bf16"}


def _nodes(plane: ControlPlane, *, h100: tuple[str, ...] = ("h100-a", "h100-b")) -> None:
    for name in h100:
        plane.create_node(name, H100, 4)
    plane.create_node("l4", L4, 8)
    plane.create_node("cpu", {"kubernetes.io/arch": "amd64"}, 0)


def _keep_fixtures(recorded: Path, prefix: str) -> None:
    """ACCELPLAN_RECORD_FIXTURES=1: keep what the real scheduler sent, for tests/unit replays."""
    if not os.environ.get("ACCELPLAN_RECORD_FIXTURES"):
        return
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for old in FIXTURES.glob(f"{prefix}-*.json"):
        old.unlink()
    for f in sorted(recorded.glob("*.json")):
        shutil.copy(f, FIXTURES / f"{prefix}-{f.name}")


def test_model_aware_placement_and_gpu_accounting(clean: ControlPlane, tmp_path: Path) -> None:
    plane = clean
    _nodes(plane)
    recorded = tmp_path / "recorded"
    with extender("--record-dir", recorded) as ext:
        config = scheduler_config(plane.kubeconfig, ext.url, ignorable=False, node_cache=False)
        with scheduler(plane, config, "sched-full-nodes"):
            # Two H100 nodes pass the filter (so the scheduler also asks /prioritize); the emptier L4 never does.
            plane.create_pod("big-1", annotations=BIG, gpus=4)
            plane.create_pod("big-2", annotations=BIG, gpus=4)
            assert {plane.wait_bound("big-1"), plane.wait_bound("big-2")} == {"h100-a", "h100-b"}

            # Not accelplan's pods: a GPU pod without annotations and a pod without GPUs schedule as before.
            plane.create_pod("plain-gpu", gpus=1)
            assert plane.wait_bound("plain-gpu") == "l4"  # the only node with a free GPU
            plane.create_pod("plain-cpu")
            assert plane.wait_bound("plain-cpu")

            # Both H100 nodes are full; the L4s can never hold the model: it waits, and says why.
            plane.create_pod("big-3", annotations=BIG, gpus=4)
            message = plane.wait_unschedulable("big-3")
            assert "accelplan" in message and "Insufficient nvidia.com/gpu" in message, message

            # 7 L4s are left: three 2-GPU pods fit, the fourth waits (the scheduler counts GPUs).
            for i in range(4):
                plane.create_pod(f"small-{i}", annotations=SMALL, gpus=2)
            for i in range(3):
                assert plane.wait_bound(f"small-{i}") == "l4"
            assert "Insufficient nvidia.com/gpu" in plane.wait_unschedulable("small-3")

            # A malformed annotation: the extender answers an Error naming it (kube-scheduler reports it on
            # the pod and retries), nothing crashes.
            plane.create_pod("typo", annotations={**SMALL, "accelplan.dev/context-length": "lots"}, gpus=1)
            message = plane.wait_unschedulable("typo", reason="SchedulerError")
            assert "accelplan.dev/context-length: 'lots' is not a whole number" in message, message
            assert ext.process.poll() is None
    assert any(recorded.glob("*-filter-big-1.json")) and any(recorded.glob("*-prioritize-*.json"))
    _keep_fixtures(recorded, "full-nodes")


def test_extender_down_and_ignorable_pods_still_schedule(clean: ControlPlane) -> None:
    plane = clean
    _nodes(plane)
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = scheduler_config(plane.kubeconfig, nobody, ignorable=True, node_cache=False)
    with scheduler(plane, config, "sched-ignorable"):
        plane.create_pod("big-1", annotations=BIG, gpus=4)
        assert plane.wait_bound("big-1") in ("h100-a", "h100-b", "l4")
        plane.create_pod("plain-gpu", gpus=1)
        assert plane.wait_bound("plain-gpu") in ("h100-a", "h100-b", "l4")


def test_node_cache_from_a_watch(clean: ControlPlane, tmp_path: Path) -> None:
    plane = clean
    _nodes(plane, h100=("h100-a",))
    recorded = tmp_path / "recorded"
    with extender("--node-cache", "--kubeconfig", plane.kubeconfig, "--record-dir", recorded) as ext:
        config = scheduler_config(plane.kubeconfig, ext.url, ignorable=False, node_cache=True)
        with scheduler(plane, config, "sched-node-cache"):
            plane.create_pod("big-1", annotations=BIG, gpus=4)
            assert plane.wait_bound("big-1") == "h100-a"
            plane.create_pod("big-2", annotations=BIG, gpus=4)
            assert "accelplan" in plane.wait_unschedulable("big-2")
            # A node added later reaches the extender through its watch, and the waiting pod lands there.
            plane.create_node("h100-b", H100, 4)
            assert plane.wait_bound("big-2", seconds=60) == "h100-b"
    _keep_fixtures(recorded, "node-cache")


def test_the_shipped_manifests_are_valid_api_objects(plane: ControlPlane) -> None:
    """deploy/kubernetes/scheduler-extender/extender.yaml, checked by the real API server (server-side dry run)."""
    paths = {
        "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
        "Service": "/api/v1/namespaces/{ns}/services",
        "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
        "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    }
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    assert sorted(d["kind"] for d in docs) == sorted(paths)
    for doc in docs:
        path = paths[doc["kind"]].format(ns=doc["metadata"].get("namespace", ""))
        r = plane.session.post(f"{plane.api_url}{path}?dryRun=All&fieldValidation=Strict", json=doc, timeout=10)
        assert r.status_code == 201, f"{doc['kind']}: {r.status_code} {r.text}"


def test_ranking_over_grpc_with_planner(clean: ControlPlane) -> None:
    """--planner: the extender asks a running `accelplan serve` (RankNodes over gRPC) instead of ranking in-process."""
    plane = clean
    _nodes(plane, h100=("h100-a",))
    server = launch_server()
    try:
        with extender("--planner", server.address) as ext:
            config = scheduler_config(plane.kubeconfig, ext.url, ignorable=False, node_cache=False)
            with scheduler(plane, config, "sched-planner"):
                plane.create_pod("big-1", annotations=BIG, gpus=4)
                assert plane.wait_bound("big-1") == "h100-a"
                plane.create_pod("big-2", annotations=BIG, gpus=4)
                assert "accelplan" in plane.wait_unschedulable("big-2")
    finally:
        server.process.terminate()
        server.process.wait(timeout=15)
