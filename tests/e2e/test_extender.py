"""`accelplan extender` as shipped: HTTP, in-process and over gRPC (--planner), replaying recorded ExtenderArgs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ServerProcess
from tests.e2e_kubernetes.cluster import ExtenderProcess, extender

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"


def _body(pattern: str) -> bytes:
    (path,) = FIXTURES.glob(pattern)
    return path.read_bytes()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


@pytest.fixture(scope="module")
def local() -> Iterator[ExtenderProcess]:
    with extender() as e:
        yield e


@pytest.fixture(scope="module")
def remote(server: ServerProcess) -> Iterator[ExtenderProcess]:
    with extender("--planner", server.address) as e:
        yield e


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_filter_and_prioritize_over_http(mode: str, request: pytest.FixtureRequest, http: requests.Session) -> None:
    ext: ExtenderProcess = request.getfixturevalue(mode)
    r = http.post(f"{ext.url}/filter", data=_body("full-nodes-*-filter-big-1.json"), timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    result = r.json()
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["h100-a", "h100-b"]
    assert list(result["FailedAndUnresolvableNodes"]) == ["l4"]
    r = http.post(f"{ext.url}/prioritize", data=_body("full-nodes-*-prioritize-big-1.json"), timeout=10)
    assert r.status_code == 200
    assert [h["Host"] for h in r.json()] == ["h100-a", "h100-b"]
    r = http.post(f"{ext.url}/filter", data=_body("full-nodes-*-filter-typo.json"), timeout=10)
    assert "accelplan.dev/context-length" in r.json()["Error"]


def test_bad_bodies_and_health(local: ExtenderProcess, http: requests.Session) -> None:
    r = http.post(f"{local.url}/filter", data=b"{not json", timeout=10)
    assert r.status_code == 200 and "not an ExtenderArgs" in r.json()["Error"]
    assert http.post(f"{local.url}/prioritize", data=b"[]", timeout=10).status_code == 400
    assert http.get(f"{local.url}/healthz", timeout=10).status_code == 200
    assert local.process.poll() is None


def test_node_cache_not_synced_is_not_healthy(tmp_path: Path, http: requests.Session) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "users:\n- name: x\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\n"
        "current-context: x\n"
    )
    with extender("--node-cache", "--kubeconfig", kubeconfig) as e:
        assert http.get(f"{e.url}/healthz", timeout=10).status_code == 503
        r = http.post(f"{e.url}/filter", data=_body("node-cache-0001-filter-big-1.json"), timeout=10)
        assert set(r.json()["FailedNodes"]) == {"h100-a", "l4"}  # unknown yet: not unresolvable


def test_https_with_tls_cert_and_key(tmp_path: Path) -> None:
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", key, "-out", cert, "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with extender("--tls-cert", cert, "--tls-key", key) as e:
        s = requests.Session()
        s.trust_env = False  # else REQUESTS_CA_BUNDLE overrides verify
        url = e.url.replace("http://", "https://")
        r = s.post(f"{url}/filter", data=_body("full-nodes-*-filter-big-1.json"), verify=str(cert), timeout=10)
        assert list(r.json()["FailedAndUnresolvableNodes"]) == ["l4"]
