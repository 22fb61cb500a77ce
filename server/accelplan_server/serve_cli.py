"""The ``accelplan serve`` subcommand: its flags and how they become a running server."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from accelplan_server.serve import ServerConfig, serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags to ``parser``."""
    parser.add_argument("--host", default="localhost", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=50051, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to drain calls on SIGTERM")
    parser.add_argument("--max-workers", type=int, default=16, help="handler threads")
    parser.add_argument("--data-dir", help="read catalogues from this folder instead of the embedded ones")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")


def run(args: argparse.Namespace) -> int:
    """Start the server from parsed flags; returns the exit code."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return serve(
        ServerConfig(
            host=args.host,
            port=args.port,
            max_workers=args.max_workers,
            grace_seconds=args.grace,
            data_dir=Path(args.data_dir) if args.data_dir else None,
        )
    )
