"""TLS, mutual TLS and bearer tokens: loading credentials for the server."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

TOKEN_ENV = "ACCELPLAN_TOKEN"
TOKEN_FILE_ENV = "ACCELPLAN_TOKEN_FILE"

EXEMPT_SERVICES: Mapping[str, tuple[str, ...]] = {
    "health": ("/grpc.health.v1.Health/",),
    "reflection": ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/"),
}
"""Names accepted by ``--auth-exempt`` and the method prefixes each one exempts from token auth."""


class CredentialError(ValueError):
    """A certificate, key or token could not be loaded."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener; ``client_ca`` turns on mutual TLS (client certificates required)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """The grpc server credentials these files describe."""
        cert, key = _read(self.cert, "--tls-cert"), _read(self.key, "--tls-key")
        ca = _read(self.client_ca, "--tls-client-ca") if self.client_ca else None
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def _read(path: Path, flag: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CredentialError(f"{flag}: cannot read {path}: {e.strerror}") from None
    if b"-----BEGIN" not in data:
        raise CredentialError(f"{flag}: {path} is not a PEM file")
    return data


@dataclass(frozen=True)
class TokenAuth:
    """Bearer-token check: ``authorization: Bearer <token>``, compared in constant time."""

    token: str = field(repr=False)
    exempt_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.token or any(c.isspace() for c in self.token):
            raise CredentialError("the auth token must be non-empty and contain no whitespace")

    def exempt(self, method: str) -> bool:
        """Whether ``method`` (``/package.Service/Method``) is served without a token."""
        return method.startswith(self.exempt_prefixes) if self.exempt_prefixes else False

    def allows(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> bool:
        """Whether the call's metadata carries the right bearer token."""
        expected = self.token.encode()
        ok = False
        for key, value in metadata or ():
            if key != "authorization":
                continue
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            scheme, _, presented = text.partition(" ")
            # Every authorization entry is compared, so timing does not say which one matched.
            ok |= scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected)
        return ok


def exempt_prefixes(names: str) -> tuple[str, ...]:
    """Method prefixes for a comma-separated list of exempt service names ("" exempts nothing)."""
    prefixes: list[str] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if not name:
            continue
        if name not in EXEMPT_SERVICES:
            raise CredentialError(f"--auth-exempt: unknown service {name!r}; known: {', '.join(EXEMPT_SERVICES)}")
        prefixes.extend(EXEMPT_SERVICES[name])
    return tuple(prefixes)


def load_token(token_file: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The token from ``token_file``, else $ACCELPLAN_TOKEN_FILE, else $ACCELPLAN_TOKEN; None when unset."""
    env = os.environ if environ is None else environ
    path = token_file or env.get(TOKEN_FILE_ENV)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise CredentialError(f"token file {path}: {e.strerror}") from None
        if not token:
            raise CredentialError(f"token file {path} is empty")
        return token
    token = env.get(TOKEN_ENV, "").strip()
    return token or None
