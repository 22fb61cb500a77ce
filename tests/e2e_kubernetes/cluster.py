"""A real Kubernetes control plane on 127.0.0.1 for the extender's end-to-end tests.

etcd, kube-apiserver and kube-scheduler built by scripts/kube/build run as
subprocesses on free ports. There is no kubelet: Nodes are created through the
API with their GPU capacity and labels and marked Ready; pods are only bound,
never run, which is all a scheduler test needs.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import urllib3
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools" / "kube" / "bin"
TOKEN = "accelplan-e2e-token"
START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binaries_present() -> bool:
    return all((BIN / b).exists() for b in ("etcd", "kube-apiserver", "kube-scheduler"))


def _wait(what: str, check: Any, proc: subprocess.Popen[bytes], log: Path, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {seconds:.0f} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ControlPlane:
    """etcd + kube-apiserver, with a requests session that talks to the API."""

    workdir: Path
    api_url: str = ""
    kubeconfig: Path = field(default_factory=Path)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)

    def start(self) -> None:
        w = self.workdir
        w.mkdir(parents=True, exist_ok=True)
        openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        subprocess.run(
            [*openssl, "-keyout", w / "serving.key", "-out", w / "serving.crt",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(["openssl", "genrsa", "-out", w / "sa.key", "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", w / "sa.key", "-pubout", "-out", w / "sa.pub"], check=True, capture_output=True
        )
        (w / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')

        client_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_log = w / "etcd.log"
        etcd = subprocess.Popen(
            [BIN / "etcd", "--name", "e2e", "--data-dir", w / "etcd",
             "--listen-client-urls", f"http://127.0.0.1:{client_port}",
             "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
             "--initial-cluster", f"e2e=http://127.0.0.1:{peer_port}",
             "--unsafe-no-fsync", "--log-level", "warn"],
            stdout=etcd_log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(etcd)
        _wait("etcd", lambda: requests.get(f"http://127.0.0.1:{client_port}/health", timeout=1).ok, etcd, etcd_log)

        api_log = w / "apiserver.log"
        api = subprocess.Popen(
            [BIN / "kube-apiserver",
             f"--etcd-servers=http://127.0.0.1:{client_port}",
             "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
             f"--tls-cert-file={w / 'serving.crt'}", f"--tls-private-key-file={w / 'serving.key'}",
             f"--cert-dir={w / 'certs'}",
             f"--token-auth-file={w / 'tokens.csv'}", "--authorization-mode=AlwaysAllow",
             "--service-account-issuer=https://kubernetes.default.svc",
             f"--service-account-key-file={w / 'sa.pub'}", f"--service-account-signing-key-file={w / 'sa.key'}",
             "--service-cluster-ip-range=10.0.0.0/24",
             "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
             "--enable-priority-and-fairness=false", "--v=1"],
            stdout=api_log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.procs.append(api)
        self.api_url = f"https://127.0.0.1:{api_port}"
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"
        self.session.verify = str(w / "serving.crt")
        self.session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify, and proxies apply to loopback
        _wait("kube-apiserver", lambda: self.session.get(f"{self.api_url}/readyz", timeout=2).ok, api, api_log)
        # The default namespace and service account come from controllers we do not run.
        _wait("default namespace", lambda: self.get("/api/v1/namespaces/default") is not None, api, api_log)
        self.kubeconfig = w / "kubeconfig"
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: e2e\n  cluster:\n    server: {self.api_url}\n"
            f"    certificate-authority: {w / 'serving.crt'}\n"
            f"users:\n- name: admin\n  user:\n    token: {TOKEN}\n"
            "contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: admin\n"
            "current-context: e2e\n"
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.session.close()

    # --- API helpers -------------------------------------------------------------------------------
    def get(self, path: str) -> dict[str, Any] | None:
        r = self.session.get(self.api_url + path, timeout=10)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        r = self.session.post(self.api_url + path, json=body, timeout=10)
        if not r.ok:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text}")
        result: dict[str, Any] = r.json()
        return result

    def create_node(self, name: str, labels: Mapping[str, str], gpus: int, resource: str = "nvidia.com/gpu") -> None:
        """A Ready node with ``gpus`` of ``resource`` and the given labels (no kubelet behind it)."""
        resources = {"cpu": "64", "memory": "512Gi", "pods": "110"}
        if gpus:
            resources[resource] = str(gpus)
        self.post("/api/v1/nodes", {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}}})
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "e2e",
                     "lastHeartbeatTime": now, "lastTransitionTime": now}
                ],
            }
        }  # fmt: skip
        r = self.session.patch(
            f"{self.api_url}/api/v1/nodes/{name}/status",
            json=status,
            headers={"Content-Type": "application/strategic-merge-patch+json"},
            timeout=10,
        )
        if not r.ok:
            raise RuntimeError(f"patch node {name} status: {r.status_code} {r.text}")

    def create_pod(
        self, name: str, *, annotations: Mapping[str, str] | None = None, gpus: int = 0, namespace: str = "default"
    ) -> None:
        container: dict[str, Any] = {"name": "main", "image": "registry.invalid/serve:1"}
        if gpus:
            container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        self.post(
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "metadata": {"name": name, "annotations": dict(annotations or {})},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 0},
            },
        )

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        pod = self.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        assert pod is not None, f"pod {name} is gone"
        return pod

    def wait_bound(self, name: str, seconds: float = 30.0) -> str:
        """The node the pod is bound to; fails after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            node = self.pod(name)["spec"].get("nodeName")
            if node:
                return str(node)
            time.sleep(0.05)
        raise AssertionError(f"pod {name} not bound after {seconds:.0f} s: {self.pod(name).get('status')}")

    def wait_unschedulable(self, name: str, seconds: float = 30.0, reason: str = "Unschedulable") -> str:
        """The scheduler's message once it has found no node for the pod (or, with reason="SchedulerError",
        failed to schedule it); fails if the pod binds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pod = self.pod(name)
            assert not pod["spec"].get("nodeName"), f"pod {name} was bound to {pod['spec'].get('nodeName')}"
            for c in pod.get("status", {}).get("conditions", []):
                if c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") == reason:
                    return str(c.get("message", ""))
            time.sleep(0.05)
        raise AssertionError(f"pod {name} not marked {reason} after {seconds:.0f} s: {self.pod(name).get('status')}")

    def reset(self) -> None:
        """Delete every pod and node (immediately: no kubelet has to confirm)."""
        for pod in (self.get("/api/v1/namespaces/default/pods") or {}).get("items", []):
            self.session.delete(
                f"{self.api_url}/api/v1/namespaces/default/pods/{pod['metadata']['name']}",
                json={"gracePeriodSeconds": 0},
                timeout=10,
            )
        for node in (self.get("/api/v1/nodes") or {}).get("items", []):
            self.session.delete(f"{self.api_url}/api/v1/nodes/{node['metadata']['name']}", timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pods = (self.get("/api/v1/namespaces/default/pods") or {}).get("items", [])
            nodes = (self.get("/api/v1/nodes") or {}).get("items", [])
            if not pods and not nodes:
                return
            time.sleep(0.05)
        raise AssertionError("pods or nodes left after reset")


SAMPLE_CONFIG = ROOT / "deploy" / "kubernetes" / "scheduler-extender" / "scheduler-config.yaml"


def scheduler_config(kubeconfig: Path, extender_url: str, *, ignorable: bool, node_cache: bool) -> str:
    """The shipped sample KubeSchedulerConfiguration, pointed at this cluster and this extender."""
    config = yaml.safe_load(SAMPLE_CONFIG.read_text())
    config["clientConnection"]["kubeconfig"] = str(kubeconfig)
    config["leaderElection"] = {"leaderElect": False}
    (ext,) = config["extenders"]
    ext.update(urlPrefix=extender_url, ignorable=ignorable, nodeCacheCapable=node_cache)
    return str(yaml.safe_dump(config))


@contextmanager
def scheduler(plane: ControlPlane, config: str, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """kube-scheduler with ``config``, stopped on exit."""
    path = plane.workdir / f"{name}.yaml"
    path.write_text(config)
    log = plane.workdir / f"{name}.log"
    port = free_port()
    proc = subprocess.Popen(
        [BIN / "kube-scheduler", f"--config={path}", "--bind-address=127.0.0.1", f"--secure-port={port}", "--v=2"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        probe = requests.Session()
        probe.verify = False
        probe.trust_env = False
        _wait("kube-scheduler", lambda: probe.get(f"https://127.0.0.1:{port}/healthz", timeout=1).ok, proc, log)
        yield proc
    finally:
        _stop(proc)


@dataclass
class ExtenderProcess:
    process: subprocess.Popen[str]
    url: str


@contextmanager
def extender(*extra: str | Path) -> Iterator[ExtenderProcess]:
    """`accelplan extender --port 0` (the shipped command), stopped on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelplan.cli", "extender", "--host", "127.0.0.1", "--port", "0",
         "--log-level", "WARNING", *map(str, extra)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"extender did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield ExtenderProcess(proc, f"http://{m.group(1)}:{m.group(2)}")
    finally:
        _stop(proc)  # type: ignore[arg-type]
