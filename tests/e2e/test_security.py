"""TLS, mutual TLS and bearer-token auth, against the shipped Python client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from accelplan.client import PlannerClient, PlannerError
from accelplan_server.runtime.security import CredentialError, TlsFiles, TokenAuth, exempt_prefixes, load_token
from accelplan_server.runtime.serve import RunningServer, ServerConfig, start
from tests.e2e.tls_certs import Certs, make_certs

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def certs() -> Certs:
    return make_certs()


@pytest.fixture(scope="module")
def cert_files(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return certs.write(tmp_path_factory.mktemp("certs"))


def _start(config: ServerConfig) -> Iterator[RunningServer]:
    running = start(config)
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def tls_server(cert_files: dict[str, Path]) -> Iterator[RunningServer]:
    yield from _start(ServerConfig(port=0, tls=TlsFiles(cert_files["server.crt"], cert_files["server.key"])))


@pytest.fixture(scope="module")
def mtls_server(cert_files: dict[str, Path]) -> Iterator[RunningServer]:
    tls = TlsFiles(cert_files["server.crt"], cert_files["server.key"], cert_files["ca.crt"])
    yield from _start(ServerConfig(port=0, tls=tls, auth=TokenAuth(TOKEN, exempt_prefixes("health,reflection"))))


@pytest.fixture(scope="module")
def auth_server() -> Iterator[RunningServer]:
    yield from _start(ServerConfig(port=0, auth=TokenAuth(TOKEN, exempt_prefixes("health,reflection"))))


@pytest.fixture(scope="module")
def strict_auth_server() -> Iterator[RunningServer]:
    yield from _start(ServerConfig(port=0, auth=TokenAuth(TOKEN, exempt_prefixes(""))))


def _levels(client: PlannerClient) -> int:
    return len(client.list_quantization_levels().levels)


def test_tls_with_the_right_ca(tls_server: RunningServer, certs: Certs) -> None:
    with PlannerClient(f"localhost:{tls_server.port}", tls=True, root_certificates=certs.ca.cert, timeout=10) as c:
        assert _levels(c) >= 5


def test_tls_refuses_plaintext_and_unknown_ca(tls_server: RunningServer, certs: Certs) -> None:
    with PlannerClient(f"localhost:{tls_server.port}", timeout=3) as c, pytest.raises(PlannerError) as plain:
        c.list_quantization_levels()
    assert plain.value.code == grpc.StatusCode.UNAVAILABLE
    with (
        PlannerClient(f"localhost:{tls_server.port}", tls=True, root_certificates=certs.other_ca.cert, timeout=3) as c,
        pytest.raises(PlannerError) as wrong_ca,
    ):
        c.list_quantization_levels()
    assert wrong_ca.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_ca(mtls_server: RunningServer, certs: Certs) -> None:
    target = f"localhost:{mtls_server.port}"
    with PlannerClient(
        target,
        tls=True,
        root_certificates=certs.ca.cert,
        private_key=certs.client.key,
        certificate_chain=certs.client.cert,
        token=TOKEN,
        timeout=10,
    ) as c:
        assert _levels(c) >= 5
    for key, chain in ((None, None), (certs.other_client.key, certs.other_client.cert)):
        with (
            PlannerClient(
                target,
                tls=True,
                root_certificates=certs.ca.cert,
                private_key=key,
                certificate_chain=chain,
                token=TOKEN,
                timeout=3,
            ) as c,
            pytest.raises(PlannerError) as refused,
        ):
            c.list_quantization_levels()
        assert refused.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_still_wants_the_token(mtls_server: RunningServer, certs: Certs) -> None:
    with (
        PlannerClient(
            f"localhost:{mtls_server.port}",
            tls=True,
            root_certificates=certs.ca.cert,
            private_key=certs.client.key,
            certificate_chain=certs.client.cert,
            timeout=5,
        ) as c,
        pytest.raises(PlannerError) as err,
    ):
        c.list_quantization_levels()
    assert err.value.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_auth_refuses_missing_or_wrong_tokens(auth_server: RunningServer, token: str | None) -> None:
    with PlannerClient(f"localhost:{auth_server.port}", token=token, timeout=5) as c, pytest.raises(PlannerError) as e:
        c.list_quantization_levels()
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_auth_accepts_the_token(auth_server: RunningServer) -> None:
    with PlannerClient(f"localhost:{auth_server.port}", token=TOKEN, timeout=5) as c:
        assert _levels(c) >= 5


def test_auth_refuses_a_wrong_scheme(auth_server: RunningServer) -> None:
    with grpc.insecure_channel(f"localhost:{auth_server.port}") as ch:
        call = ch.unary_unary("/accelplan.v1.PlannerService/ListQuantizationLevels")
        with pytest.raises(grpc.RpcError) as e:
            call(b"", metadata=(("authorization", f"Basic {TOKEN}"),), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_health_is_exempt_by_default(auth_server: RunningServer) -> None:
    with grpc.insecure_channel(f"localhost:{auth_server.port}") as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_no_exemptions_means_health_needs_the_token(strict_auth_server: RunningServer) -> None:
    with grpc.insecure_channel(f"localhost:{strict_auth_server.port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ok = stub.Check(health_pb2.HealthCheckRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING


def test_token_sources(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text(f"  {TOKEN}\n")
    assert load_token(str(f), {}) == TOKEN
    assert load_token(None, {"ACCELPLAN_TOKEN_FILE": str(f)}) == TOKEN
    assert load_token(None, {"ACCELPLAN_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, {}) is None
    with pytest.raises(CredentialError):
        load_token(str(tmp_path / "missing"), {})
    with pytest.raises(CredentialError):
        exempt_prefixes("health,metrics")
    with pytest.raises(CredentialError):
        TokenAuth("has space")
    assert "s3cret" not in repr(TokenAuth(TOKEN))


def _serve(*flags: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "accelplan.cli", "serve", "--port", "0", "--log-level", "WARNING", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def test_cli_serves_mutual_tls_with_a_token_from_the_environment(cert_files: dict[str, Path], certs: Certs) -> None:
    flags = ["--tls-cert", str(cert_files["server.crt"]), "--tls-key", str(cert_files["server.key"])]
    flags += ["--tls-client-ca", str(cert_files["ca.crt"])]
    proc = _serve(*flags, env={"ACCELPLAN_TOKEN": TOKEN})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read() if proc.stderr else ""
        port = int(line.rsplit(":", 1)[1])
        kwargs = {"private_key": certs.client.key, "certificate_chain": certs.client.cert}
        with PlannerClient(f"localhost:{port}", tls=True, root_certificates=certs.ca.cert, token=TOKEN, **kwargs) as c:
            assert _levels(c) >= 5
        with (
            PlannerClient(f"localhost:{port}", tls=True, root_certificates=certs.ca.cert, **kwargs) as c,
            pytest.raises(PlannerError) as e,
        ):
            c.list_quantization_levels()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "/nonexistent.crt"], "go together"),
        (["--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"], "--tls-cert: cannot read"),
        (["--token-file", "/nonexistent-token"], "token file"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_cli_rejects_bad_security_flags(flags: list[str], message: str) -> None:
    proc = _serve(*flags)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert message in err
