"""The ``accelplan serve`` subcommand: its flags and how they become a running server."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from accelplan_server.runtime.security import TOKEN_ENV, TOKEN_FILE_ENV, CredentialError, TlsFiles, TokenAuth
from accelplan_server.runtime.security import exempt_prefixes as _exempt_prefixes
from accelplan_server.runtime.serve import ServerConfig, serve
from accelplan_server.runtime.workers import serve_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags to ``parser``."""
    parser.add_argument("--host", default="localhost", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=50051, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to drain calls on SIGTERM")
    parser.add_argument("--max-workers", type=int, default=16, help="handler threads per process")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port with SO_REUSEPORT (default %(default)s)"
    )
    parser.add_argument("--data-dir", help="read catalogues from this folder instead of the embedded ones")
    parser.add_argument("--log-level", default="INFO", help="DEBUG (adds one line per call), INFO, WARNING or ERROR")
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls-cert", help="PEM certificate chain; with --tls-key serves TLS")
    tls.add_argument("--tls-key", help="PEM private key for --tls-cert")
    tls.add_argument("--tls-client-ca", help="PEM CA bundle: require client certificates it signed (mutual TLS)")
    auth = parser.add_argument_group("auth")
    auth.add_argument(
        "--token-file",
        help=f"require 'authorization: Bearer <token>' with the token in this file "
        f"(or ${TOKEN_FILE_ENV}, or the token itself in ${TOKEN_ENV})",
    )
    auth.add_argument(
        "--auth-exempt",
        default="health,reflection",
        help="services served without a token, comma-separated: health, reflection (default %(default)s)",
    )
    auth.add_argument("--no-auth-exempt", action="store_true", help="require the token for every service")
    parser.add_argument(
        "--metrics-port", type=int, help="serve Prometheus /metrics on this port of --host (off by default)"
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the flags describe; CredentialError or ValueError for bad combinations."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    tls = (
        TlsFiles(Path(args.tls_cert), Path(args.tls_key), Path(args.tls_client_ca) if args.tls_client_ca else None)
        if args.tls_cert
        else None
    )
    if tls is not None:
        tls.credentials()  # fail now, with the flag's name, rather than in every worker
    from accelplan_server.runtime.security import load_token

    token = load_token(args.token_file)
    auth = None
    if token is not None:
        auth = TokenAuth(token, () if args.no_auth_exempt else _exempt_prefixes(args.auth_exempt))
    return ServerConfig(
        host=args.host,
        port=args.port,
        max_workers=args.max_workers,
        grace_seconds=args.grace,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        workers=args.workers,
        tls=tls,
        auth=auth,
        metrics_port=args.metrics_port,
        log_calls=args.log_level.upper() == "DEBUG",
    )


def run(args: argparse.Namespace) -> int:
    """Start the server from parsed flags; returns the exit code."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
    except (CredentialError, ValueError) as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    return serve_workers(config) if config.workers > 1 else serve(config)
