"""``accelplan serve --workers N``: N pre-forked processes sharing one port with SO_REUSEPORT, supervised.

The parent loads the catalogue (shared copy-on-write), checks the addresses,
and forks before any gRPC object exists in it (gRPC's threads do not survive a
fork). Each worker runs the ordinary server with SO_REUSEPORT on; the kernel
spreads new connections across them. The parent only supervises:

* each worker's event loop writes a heartbeat byte to a pipe every
  ``HEARTBEAT_SECONDS``; a worker silent for ``HEARTBEAT_TIMEOUT_SECONDS``
  (stopped, hung, its loop blocked) is killed and replaced, and so is one that
  exits;
* workers die with the parent: PR_SET_PDEATHSIG on Linux, and each heartbeat
  also checks that the parent is still the one that forked it;
* on SIGTERM the parent forwards it to every worker, waits for their drain
  (drain delay + grace), and exits 0 when all of them drained cleanly, 3 when
  one cut calls, 1 otherwise.

With ``--metrics-port``, worker 0 serves /metrics summed over all workers
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace

from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.runtime.process import die_with_parent, raise_open_file_limit
from accelplan_server.runtime.serve import (
    EXIT_CALLS_CUT,
    EXIT_OK,
    EXIT_START_FAILED,
    PortInUse,
    Served,
    ServerConfig,
    bind_addresses,
    log_limits,
    serve_async,
    warn_if_plaintext,
)

log = logging.getLogger("accelplan.workers")

READY_TIMEOUT_SECONDS = 30.0
RESTART_BACKOFF_SECONDS = 1.0
HEARTBEAT_SECONDS = 0.5
"""How often a worker's event loop says it is alive."""
HEARTBEAT_TIMEOUT_SECONDS = 3.0
"""A worker silent this long is killed and replaced."""


def probe_port(host: str, port: int) -> int:
    """Bind every address of ``host`` on ``port`` without SO_REUSEPORT, proving nobody holds any of them.

    Returns the port (chosen by the first bind when 0).
    """
    sockets: list[socket.socket] = []
    try:
        for address in bind_addresses(host, port):
            ip = address.strip("[]")
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(s)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind((ip, port))
            except OSError as e:
                raise PortInUse(f"cannot listen on {address}:{port} (for --host {host}): {e.strerror}") from None
            port = int(s.getsockname()[1])
        return port
    finally:
        for s in sockets:
            s.close()


@dataclass
class _Worker:
    index: int
    pid: int
    fd: int
    """Read end of its ready/heartbeat pipe."""
    last_beat: float


def _run_worker(index: int, config: ServerConfig, catalog: Catalog, pipe_fd: int, parent: int) -> int:
    """The body of a forked worker: serve until SIGTERM, then drain; returns its exit code."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM for everyone

    async def heartbeat() -> None:
        while True:
            if os.getppid() != parent:  # the parent is gone (PDEATHSIG covers Linux; this covers the rest)
                os._exit(1)
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(pipe_fd, b".")
            await asyncio.sleep(HEARTBEAT_SECONDS)

    tasks: list[asyncio.Task[None]] = []

    def started(_served: Served) -> None:
        os.write(pipe_fd, b"ok\n")
        tasks.append(asyncio.ensure_future(heartbeat()))

    try:
        return asyncio.run(serve_async(config, catalog=catalog, serve_metrics=index == 0, on_started=started))
    except Exception as e:  # report any start failure to the parent rather than a traceback per worker
        with contextlib.suppress(OSError):
            os.write(pipe_fd, f"error {e}\n".encode())
        return EXIT_START_FAILED


def _fork_worker(index: int, config: ServerConfig, catalog: Catalog) -> _Worker:
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        os.set_blocking(write_fd, False)
        code = 1
        try:
            code = _run_worker(index, config, catalog, write_fd, parent)
        finally:
            logging.shutdown()
            os._exit(code)
    os.close(write_fd)
    return _Worker(index, pid, read_fd, time.monotonic())


def _await_ready(worker: _Worker) -> str:
    """The worker's first line: ``ok`` once it serves, else ``error <why>``."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    chunks = b""
    while b"\n" not in chunks:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([worker.fd], [], [], left)[0]:
            return "error worker did not start in time"
        chunk = os.read(worker.fd, 256)
        if not chunk:
            break
        chunks += chunk
    worker.last_beat = time.monotonic()
    line = chunks.split(b"\n", 1)[0].decode(errors="replace").strip()
    return line or "error worker exited before it was ready"


def serve_workers(config: ServerConfig) -> int:
    """Run ``config.workers`` processes on one port until SIGTERM/SIGINT; returns the exit code."""
    open_files = raise_open_file_limit()
    try:
        port = probe_port(config.host, config.port)
        if config.metrics_port:
            probe_port(config.metrics_host, config.metrics_port)
    except PortInUse as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    worker_config = replace(config, port=port, reuse_port=True, workers=1)
    metrics_dir = None
    if config.metrics_port is not None:
        metrics_dir = tempfile.mkdtemp(prefix="accelplan-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    catalog = load_catalog(config.data_dir)
    workers: dict[int, _Worker] = {}  # pid -> worker
    try:
        for index in range(config.workers):
            worker = _fork_worker(index, worker_config, catalog)
            workers[worker.pid] = worker
            status = _await_ready(worker)
            if status != "ok":
                print(f"accelplan: worker {index}: {status.removeprefix('error ')}", file=sys.stderr)
                _stop_all(workers, 0.0)
                return EXIT_START_FAILED
        warn_if_plaintext(config)
        log_limits(config, open_files)
        print(f"accelplan listening on {config.host}:{port} ({config.workers} workers)", flush=True)
        if config.metrics_port is not None:
            print(f"accelplan metrics on http://{config.metrics_host}:{config.metrics_port}/metrics", flush=True)
        _supervise(workers, worker_config, catalog)
        log.info("draining %d workers for up to %.0fs", len(workers), config.drain_delay_seconds + config.grace_seconds)
        return _stop_all(workers, config.drain_delay_seconds + config.grace_seconds)
    finally:
        for w in workers.values():
            with contextlib.suppress(OSError):
                os.close(w.fd)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _replace(workers: dict[int, _Worker], old: _Worker, config: ServerConfig, catalog: Catalog) -> None:
    with contextlib.suppress(OSError):
        os.close(old.fd)
    time.sleep(RESTART_BACKOFF_SECONDS)
    new = _fork_worker(old.index, config, catalog)
    workers[new.pid] = new
    ready = _await_ready(new)
    if ready != "ok":
        log.error("worker %d did not restart: %s", old.index, ready)


def _supervise(workers: dict[int, _Worker], config: ServerConfig, catalog: Catalog) -> None:
    """Replace workers that exit or stop beating until SIGTERM or SIGINT arrives."""
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping:
        fds = {w.fd: w for w in workers.values()}
        try:
            readable = select.select(list(fds), [], [], 0.2)[0]
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            with contextlib.suppress(OSError):
                if os.read(fd, 4096):
                    fds[fd].last_beat = now
        if stopping:
            break
        while True:  # reap workers that exited
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
            old = workers.pop(pid, None)
            if old is None or stopping:
                continue
            log.warning("worker %d (pid %d) exited with status %d; restarting", old.index, pid, status)
            _replace(workers, old, config, catalog)
        for worker in list(workers.values()):
            silent = time.monotonic() - worker.last_beat
            if silent > HEARTBEAT_TIMEOUT_SECONDS and not stopping:
                log.warning(
                    "worker %d (pid %d) sent no heartbeat for %.1fs (stopped or hung); replacing it",
                    worker.index,
                    worker.pid,
                    silent,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(worker.pid, 0)
                workers.pop(worker.pid, None)
                _replace(workers, worker, config, catalog)


def _stop_all(workers: dict[int, _Worker], drain_seconds: float) -> int:
    """SIGTERM every worker, wait for the drain, SIGKILL stragglers; the exit code for the whole server."""
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a stopped worker must run to drain
    deadline = time.monotonic() + drain_seconds + 5.0
    codes: list[int] = []
    remaining = dict(workers)
    while remaining and time.monotonic() < deadline:
        for pid in list(remaining):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                remaining.pop(pid)
                continue
            if done:
                remaining.pop(pid)
                codes.append(os.waitstatus_to_exitcode(status))
        time.sleep(0.05)
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        codes.append(1)
    if all(c == EXIT_OK for c in codes):
        return EXIT_OK
    return EXIT_CALLS_CUT if all(c in (EXIT_OK, EXIT_CALLS_CUT) for c in codes) else 1
