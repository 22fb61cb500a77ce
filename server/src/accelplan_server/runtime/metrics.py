"""Prometheus metrics: per-RPC request counts by status code and latency histograms.

prometheus_client is imported lazily so that a server without ``--metrics-port``
pays nothing, and so that ``--workers`` can point it at a shared directory
(its multiprocess mode) before any worker creates a metric.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Seconds: most calls take well under a millisecond; the 4,096-device plans take tens of ms."""


@dataclass
class RpcMetrics:
    """The two metric families, with label children cached per (method, code)."""

    requests: Any
    latency: Any
    _counters: dict[tuple[str, str], Any] = field(default_factory=dict)
    _histograms: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Count one finished call and record its duration."""
        counter = self._counters.get((method, code))
        hist = self._histograms.get(method)
        if counter is None or hist is None:
            with self._lock:
                counter = self._counters.setdefault((method, code), self.requests.labels(method, code))
                hist = self._histograms.setdefault(method, self.latency.labels(method))
        counter.inc()
        hist.observe(seconds)


_metrics: RpcMetrics | None = None
_metrics_lock = threading.Lock()


def rpc_metrics() -> RpcMetrics:
    """The process's metrics, created on first use."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            from prometheus_client import Counter, Histogram

            _metrics = RpcMetrics(
                Counter(
                    "accelplan_rpc_requests",
                    "Finished RPCs by method and gRPC status code.",
                    ["method", "code"],
                ),
                Histogram(
                    "accelplan_rpc_duration_seconds",
                    "Server-side handling time of unary RPCs, by method.",
                    ["method"],
                    buckets=LATENCY_BUCKETS,
                ),
            )
        return _metrics


def start_http_server(host: str, port: int) -> int:
    """Serve /metrics on ``host:port`` from a daemon thread; returns the bound port.

    In multiprocess mode ($PROMETHEUS_MULTIPROC_DIR set by ``--workers``) the
    page sums every worker's values.
    """
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client import start_http_server as _start

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    addr = "::" if host in ("::", "[::]") else ("127.0.0.1" if host == "localhost" else host.strip("[]"))
    server, _thread = _start(port, addr=addr, registry=registry)
    return int(server.server_port)
