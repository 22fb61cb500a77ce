"""The ``accelplan serve`` subcommand: its flags and how they become a running server."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from accelplan_server.core import cache
from accelplan_server.core.catalog import load_catalog
from accelplan_server.runtime.lanes import default_workers
from accelplan_server.runtime.security import TOKEN_ENV, TOKEN_FILE_ENV, CredentialError, TlsFiles, TokenAuth
from accelplan_server.runtime.security import exempt_prefixes as _exempt_prefixes
from accelplan_server.runtime.serve import EXIT_CODES_HELP, ServerConfig, serve
from accelplan_server.runtime.workers import serve_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags to ``parser`` (and the exit statuses to its help)."""
    parser.epilog = EXIT_CODES_HELP
    parser.add_argument("--host", default="localhost", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=50051, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="on SIGTERM, after --drain-delay: seconds calls in flight get to finish (default %(default)s)",
    )
    parser.add_argument(
        "--drain-delay",
        type=float,
        default=5.0,
        help="on SIGTERM: seconds health answers NOT_SERVING while calls are still served, so load balancers "
        "stop sending new ones before the server refuses them (default %(default)s)",
    )
    parser.add_argument(
        "--max-workers", type=int, default=16, help="threads for blocking handlers per process (default %(default)s)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port with SO_REUSEPORT (default %(default)s)"
    )
    parser.add_argument("--data-dir", help="read catalogues from this folder instead of the embedded ones")
    parser.add_argument(
        "--cache-bytes",
        type=int,
        default=cache.DEFAULT_TOTAL_BYTES,
        help="bytes all caches of one process may hold together (default %(default)s = 256 MiB; 0 turns them off)",
    )
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
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics on this port of --metrics-host (off by default); the page is "
        "unauthenticated (no TLS, no token)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for /metrics (default %(default)s: loopback only; anyone who can reach it can read it)",
    )
    lanes = parser.add_argument_group("heavy lane")
    lanes.add_argument(
        "--heavy-workers",
        type=int,
        default=default_workers(),
        help="processes for expensive requests (large fleets), so they never stall cheap calls and health "
        "checks; 0 runs everything inline (default %(default)s: cores - 1, 1 to 4)",
    )
    lanes.add_argument(
        "--heavy-queue",
        type=int,
        default=64,
        help="expensive requests queued or running per process; past it RESOURCE_EXHAUSTED with a "
        "google.rpc.RetryInfo (default %(default)s)",
    )
    lanes.add_argument(
        "--heavy-threshold-ms",
        type=float,
        default=20.0,
        help="requests estimated to need at least this much CPU go to the heavy lane (default %(default)s)",
    )
    conns = parser.add_argument_group("connections")
    conns.add_argument(
        "--max-streams-per-connection",
        type=int,
        default=100,
        help="concurrent calls one connection may have open (grpc.max_concurrent_streams), which bounds "
        "the responses one client that never reads can pin (default %(default)s)",
    )
    conns.add_argument(
        "--max-unread-mb-per-connection",
        type=int,
        default=64,
        help="MiB of large answers one connection may leave unread (flow-control window closed) before its "
        "further large answers are refused with RESOURCE_EXHAUSTED (default %(default)s)",
    )
    conns.add_argument(
        "--max-connection-idle",
        type=float,
        default=300.0,
        help="seconds before a connection without calls is closed (default %(default)s)",
    )
    conns.add_argument(
        "--max-connection-age",
        type=float,
        default=3600.0,
        help="seconds before any connection is asked to reconnect (default %(default)s)",
    )
    conns.add_argument(
        "--max-connection-age-grace",
        type=float,
        default=30.0,
        help="seconds calls get to finish on a connection past --max-connection-age (default %(default)s)",
    )
    conns.add_argument(
        "--handshake-timeout",
        type=float,
        default=10.0,
        help="seconds a new connection has to finish its TLS/HTTP2 handshake (default %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the flags describe; CredentialError or ValueError for bad combinations."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.cache_bytes < 0:
        raise ValueError("--cache-bytes must be at least 0")
    for flag, value in (
        ("--grace", args.grace),
        ("--drain-delay", args.drain_delay),
        ("--heavy-workers", args.heavy_workers),
        ("--max-connection-age-grace", args.max_connection_age_grace),
    ):
        if value < 0:
            raise ValueError(f"{flag} must not be negative")
    for flag, value in (
        ("--heavy-queue", args.heavy_queue),
        ("--heavy-threshold-ms", args.heavy_threshold_ms),
        ("--max-streams-per-connection", args.max_streams_per_connection),
        ("--max-unread-mb-per-connection", args.max_unread_mb_per_connection),
        ("--max-connection-idle", args.max_connection_idle),
        ("--max-connection-age", args.max_connection_age),
        ("--handshake-timeout", args.handshake_timeout),
    ):
        if value <= 0:
            raise ValueError(f"{flag} must be greater than 0")
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
        drain_delay_seconds=args.drain_delay,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        workers=args.workers,
        tls=tls,
        auth=auth,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        log_calls=args.log_level.upper() == "DEBUG",
        heavy_workers=args.heavy_workers,
        heavy_queue=args.heavy_queue,
        heavy_threshold_seconds=args.heavy_threshold_ms / 1e3,
        max_streams_per_connection=args.max_streams_per_connection,
        max_unread_bytes_per_connection=args.max_unread_mb_per_connection << 20,
        max_connection_idle_seconds=args.max_connection_idle,
        max_connection_age_seconds=args.max_connection_age,
        max_connection_age_grace_seconds=args.max_connection_age_grace,
        handshake_timeout_seconds=args.handshake_timeout,
    )


def run(args: argparse.Namespace) -> int:
    """Start the server from parsed flags; returns the exit code."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from_args(args)
        if config.data_dir is not None:
            load_catalog(config.data_dir)  # fail now, naming file, row and field, not in every worker
    except (CredentialError, ValueError) as e:  # CatalogError is a ValueError
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    cache.set_total_bytes(args.cache_bytes)  # before serving (and forking workers, which inherit it)
    return serve_workers(config) if config.workers > 1 else serve(config)
