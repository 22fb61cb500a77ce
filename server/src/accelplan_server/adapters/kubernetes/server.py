"""``accelplan extender``: the HTTP server kube-scheduler calls, its flags and its lifecycle."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import signal
import ssl
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from accelplan_server.adapters.kubernetes.annotations import AnnotationError
from accelplan_server.adapters.kubernetes.extender import Extender
from accelplan_server.adapters.kubernetes.nodecache import NodeCache, NodeWatcher
from accelplan_server.adapters.kubernetes.ranking import GrpcRanker, LocalRanker, Ranker, RankError, ShapeRanker
from accelplan_server.adapters.kubernetes.wire import BadArgs, encode, field
from accelplan_server.runtime import allocator, compiled

log = logging.getLogger("accelplan.extender")

MAX_BODY_BYTES = 256 * 2**20
"""Largest ExtenderArgs accepted: 5,000 full Node objects are ~25-50 MiB (use nodeCacheCapable: true instead)."""


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=encode(value), status=status, content_type="application/json")


MAX_RECORDED = 1000
"""Most requests --record-dir writes."""


class Recorder:
    """Writes the request bodies kube-scheduler sends, as sent, for replay in tests (``--record-dir``)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.count = 0

    def write(self, verb: str, body: bytes) -> None:
        """Keep one request body, named by its order, verb and pod."""
        if self.count >= MAX_RECORDED:
            return
        self.count += 1
        try:
            args = orjson.loads(body)
        except orjson.JSONDecodeError:
            args = None
        pod = field(args, "Pod") if isinstance(args, dict) else None
        name = str(((pod or {}).get("metadata") or {}).get("name", "unknown")) if isinstance(pod, dict) else "unknown"
        safe = re.sub(r"[^A-Za-z0-9.-]", "_", name)[:100]
        (self.folder / f"{self.count:04d}-{verb}-{safe}.json").write_bytes(body)


async def read_body(request: web.Request) -> bytes:
    """The request body, copied once (``request.read`` copies a 3 MB body three times); 413 over MAX_BODY_BYTES."""
    request.content.set_read_chunk_size(MAX_BODY_BYTES)  # as request.read does: no pause per 64 KiB
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, size)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def make_app(extender: Extender, recorder: Recorder | None = None) -> web.Application:
    """The aiohttp application: POST /filter, POST /prioritize, GET /healthz."""

    async def _body(request: web.Request, verb: str) -> bytes:
        body = await read_body(request)
        if recorder is not None:
            recorder.write(verb, body)
        return body

    async def filter_(request: web.Request) -> web.Response:
        return _json(extender.filter(await _body(request, "filter")))

    async def prioritize(request: web.Request) -> web.Response:
        body = await _body(request, "prioritize")
        try:
            return _json(extender.prioritize(body))
        except (BadArgs, AnnotationError, RankError) as e:
            return _json({"Error": f"accelplan: {e}"}, status=400)

    async def healthz(request: web.Request) -> web.Response:
        if extender.cache is not None and not extender.cache.synced.is_set():
            return web.Response(status=503, text="node cache not synced yet\n")
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/filter", filter_)
    app.router.add_post("/prioritize", prioritize)
    app.router.add_get("/healthz", healthz)
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the extender flags to ``parser``."""
    parser.add_argument("--host", default="localhost", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8888, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument(
        "--planner",
        metavar="HOST:PORT",
        help="rank over gRPC with this `accelplan serve` (default: in this process, with the same servicer)",
    )
    parser.add_argument(
        "--planner-timeout",
        type=float,
        default=2.0,
        help="seconds per RankNodes call over gRPC (default %(default)s); the token is accelplan's --token",
    )
    parser.add_argument("--data-dir", help="in-process ranking: read catalogues from this folder")
    parser.add_argument(
        "--node-cache",
        action="store_true",
        help="keep node labels from a watch of the API server (needed for nodeCacheCapable: true)",
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig for --node-cache (default: in-cluster service account, else ~/.kube/config)"
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS (kube-scheduler's enableHTTPS: true)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--log-level", default="INFO", help="DEBUG (one line per filter), INFO, WARNING or ERROR")
    parser.add_argument(
        "--record-dir", help=f"write the first {MAX_RECORDED} request bodies to this folder (debugging, test fixtures)"
    )


def _ranker(args: argparse.Namespace) -> Ranker:
    if args.planner:
        return GrpcRanker(args.planner, timeout=args.planner_timeout, token=getattr(args, "token", None))
    return LocalRanker(args.data_dir)


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if not args.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise ValueError(f"--tls-cert/--tls-key: {e}") from None
    return context


async def _serve(args: argparse.Namespace) -> int:
    try:
        tls = _tls(args)
    except ValueError as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    cache: NodeCache | None = None
    watcher: NodeWatcher | None = None
    if args.node_cache:
        cache = NodeCache()
        watcher = NodeWatcher(cache, args.kubeconfig or os.environ.get("KUBECONFIG"))
        watcher.start()
    compiled.warn_if_missing()
    extender = Extender(ShapeRanker(_ranker(args)), cache)
    gc.collect()  # the catalogue and servicer are built: keep the collector from walking them per request
    gc.freeze()
    allocator.reuse_large_blocks(MAX_BODY_BYTES)  # bodies of full Nodes: reuse their blocks (up to 32 MiB)
    recorder = Recorder(Path(args.record_dir)) if args.record_dir else None
    runner = web.AppRunner(make_app(extender, recorder), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=tls)
    try:
        await site.start()
    except OSError as e:
        print(f"accelplan: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        await runner.cleanup()
        return 1
    host, port = runner.addresses[0][:2]
    print(f"accelplan extender listening on {host}:{port}{' (https)' if tls else ''}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    if watcher is not None:
        watcher.stop()
    await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the extender from parsed flags until SIGTERM or SIGINT; returns the exit code."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run_loop(_serve(args))


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when it is installed (the extender extra has it), else asyncio's loop.

    uvloop cut the server's CPU per /filter by ~1/3 for 5,000 node names in bench/extender_bench.py.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
