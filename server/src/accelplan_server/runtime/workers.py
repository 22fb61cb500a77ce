"""``accelplan serve --workers N``: N pre-forked processes sharing one port with SO_REUSEPORT.

The parent loads the catalogue (shared copy-on-write), checks the port, and
forks before any gRPC object exists in it (gRPC's threads do not survive a
fork). Each worker runs the ordinary server with SO_REUSEPORT on; the kernel
spreads new connections across them. The parent only supervises: it restarts
a worker that dies, and on SIGTERM forwards it to every worker, waits for their
drain, and exits 0 when all of them did. With ``--metrics-port``, worker 0
serves /metrics summed over all workers (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

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
from dataclasses import replace

from accelplan_server.core.catalog import Catalog, load_catalog
from accelplan_server.runtime.serve import (
    PortInUse,
    ServerConfig,
    freeze_startup_objects,
    start,
    wait_for_signal,
    warn_if_plaintext,
)

log = logging.getLogger("accelplan.workers")

READY_TIMEOUT_SECONDS = 30.0
RESTART_BACKOFF_SECONDS = 1.0


def probe_port(host: str, port: int) -> int:
    """Bind ``host:port`` without SO_REUSEPORT to prove nobody holds it; returns the port (chosen when 0)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise PortInUse(f"cannot listen on {host}:{port}: {e}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind(addr)
        except OSError as e:
            raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror}") from None
        return int(s.getsockname()[1])


def _run_worker(index: int, config: ServerConfig, catalog: Catalog, ready_fd: int) -> int:
    """The body of a forked worker: serve until SIGTERM, then drain."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM for everyone
    try:
        running = start(config, catalog=catalog, serve_metrics=index == 0)
    except Exception as e:  # report any start failure to the parent rather than a traceback per worker
        os.write(ready_fd, f"error {e}\n".encode())
        return 2
    freeze_startup_objects()
    os.write(ready_fd, b"ok\n")
    os.close(ready_fd)
    wait_for_signal()
    running.stop(config.grace_seconds)
    return 0


def _fork_worker(index: int, config: ServerConfig, catalog: Catalog) -> tuple[int, int]:
    """(pid, read end of its readiness pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        code = 1
        try:
            code = _run_worker(index, config, catalog, write_fd)
        finally:
            logging.shutdown()
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _await_ready(read_fd: int) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    chunks = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while b"\n" not in chunks:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                return "error worker did not start in time"
            chunk = pipe.read(256)
            if not chunk:
                break
            chunks += chunk
    return chunks.decode(errors="replace").strip() or "error worker exited before it was ready"


def serve_workers(config: ServerConfig) -> int:
    """Run ``config.workers`` processes on one port until SIGTERM/SIGINT; returns the exit code."""
    try:
        port = probe_port(config.host, config.port)
        if config.metrics_port:
            probe_port(config.host, config.metrics_port)
    except PortInUse as e:
        print(f"accelplan: {e}", file=sys.stderr)
        return 2
    worker_config = replace(config, port=port, reuse_port=True, workers=1)
    metrics_dir = None
    if config.metrics_port is not None:
        metrics_dir = tempfile.mkdtemp(prefix="accelplan-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    catalog = load_catalog(config.data_dir)
    pids: dict[int, int] = {}  # pid -> worker index
    try:
        for index in range(config.workers):
            pid, fd = _fork_worker(index, worker_config, catalog)
            pids[pid] = index
            status = _await_ready(fd)
            if status != "ok":
                print(f"accelplan: worker {index}: {status.removeprefix('error ')}", file=sys.stderr)
                _stop_all(pids, 0.0)
                return 2
        warn_if_plaintext(config)
        print(f"accelplan listening on {config.host}:{port} ({config.workers} workers)", flush=True)
        if config.metrics_port is not None:
            print(f"accelplan metrics on http://{config.host}:{config.metrics_port}/metrics", flush=True)
        _supervise(pids, worker_config, catalog)
        log.info("draining %d workers for up to %.0fs", len(pids), config.grace_seconds)
        return 0 if _stop_all(pids, config.grace_seconds) else 1
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(pids: dict[int, int], config: ServerConfig, catalog: Catalog) -> None:
    """Restart workers that die until SIGTERM or SIGINT arrives."""
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.2)
            continue
        index = pids.pop(pid, None)
        if index is None or stopping:
            continue
        log.warning("worker %d (pid %d) exited with status %d; restarting", index, pid, status)
        time.sleep(RESTART_BACKOFF_SECONDS)
        new_pid, fd = _fork_worker(index, config, catalog)
        pids[new_pid] = index
        ready = _await_ready(fd)
        if ready != "ok":
            log.error("worker %d did not restart: %s", index, ready)


def _stop_all(pids: dict[int, int], grace_seconds: float) -> bool:
    """SIGTERM every worker, wait for the drain, SIGKILL stragglers; True when all exited 0."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds + 5.0
    clean = True
    remaining = dict(pids)
    while remaining and time.monotonic() < deadline:
        for pid in list(remaining):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                remaining.pop(pid)
                continue
            if done:
                remaining.pop(pid)
                clean = clean and os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.05)
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        clean = False
    return clean
