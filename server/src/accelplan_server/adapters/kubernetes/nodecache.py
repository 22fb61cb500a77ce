"""Node shapes kept from a watch of the API server, for ``nodeCacheCapable: true``.

With a node cache kube-scheduler sends node names only, which is what keeps an
extender fast at thousands of nodes: the labels arrive once, through a list and
watch of ``/api/v1/nodes``, instead of with every pod. The cache keeps each
node's shape (its device-describing labels), interned: a few shapes for the
whole cluster.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from accelplan_server.adapters.kubernetes.ranking import Shape, shape_of

log = logging.getLogger("accelplan.extender.nodes")

MAX_NODES = 100_000
"""Most nodes kept (Kubernetes supports 5,000 per cluster); further nodes are reported as unknown."""
MAX_FETCHES = 16
"""Most nodes one request reads from the API server when the watch has not delivered them yet."""
FETCH_PAUSE_SECONDS = 10.0
"""After a failed read, requests do not read missing nodes for this long (the filter must stay fast)."""
WATCH_SECONDS = 300
"""Each watch request ends after this long and is resumed from the last resource version."""


class NodeCache:
    """Node name to shape; readers need no lock (one dict, replaced or updated by one writer)."""

    def __init__(self) -> None:
        self._shapes: dict[str, Shape] = {}
        self._interned: dict[Shape, Shape] = {}
        self.synced = threading.Event()
        self.fetch: Callable[[str], Mapping[str, Any] | None] | None = None
        """Reads one node from the API server: used for a name the watch has not delivered yet."""
        self._fetch_failed_at = -FETCH_PAUSE_SECONDS

    def __len__(self) -> int:
        return len(self._shapes)

    @property
    def shape_count(self) -> int:
        """Distinct shapes among the cached nodes."""
        return len(set(self._shapes.values()))

    def shape(self, name: str) -> Shape | None:
        """The node's shape, or None when the node is unknown."""
        return self._shapes.get(name)

    def shapes(self, names: list[str]) -> list[Shape | None]:
        """Each node's shape; a few names the watch has not delivered yet are read from the API server."""
        found = list(map(self._shapes.get, names))
        if self.fetch is not None and None in found and time.monotonic() - self._fetch_failed_at >= FETCH_PAUSE_SECONDS:
            missing = [i for i, s in enumerate(found) if s is None][:MAX_FETCHES]
            for i in missing:
                try:
                    node = self.fetch(names[i])
                except Exception as e:  # the API server is unreachable: the node stays unknown this time
                    log.warning("node %s: cannot read it from the API server: %s", names[i], e)
                    self._fetch_failed_at = time.monotonic()
                    break
                if node is not None:
                    self.apply("ADDED", node)
                    found[i] = self._shapes.get(names[i])
        return found

    def _intern(self, labels: Mapping[str, Any]) -> Shape:
        shape = shape_of(labels)
        return self._interned.setdefault(shape, shape)

    def replace(self, nodes: Iterable[Mapping[str, Any]]) -> None:
        """Replace the whole cache with a full list of nodes."""
        self._interned = {}
        shapes: dict[str, Shape] = {}
        for node in nodes:
            meta = node.get("metadata") or {}
            if len(shapes) < MAX_NODES and meta.get("name"):
                shapes[meta["name"]] = self._intern(meta.get("labels") or {})
        self._shapes = shapes
        self.synced.set()

    def apply(self, event_type: str, node: Mapping[str, Any]) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        meta = node.get("metadata") or {}
        name = meta.get("name")
        if not name:
            return
        if event_type == "DELETED":
            self._shapes.pop(name, None)
        elif event_type in ("ADDED", "MODIFIED") and (name in self._shapes or len(self._shapes) < MAX_NODES):
            self._shapes[name] = self._intern(meta.get("labels") or {})


class _Expired(Exception):
    """The watch's resource version is too old (410 Gone): list again."""


class NodeWatcher:
    """Lists and watches /api/v1/nodes with the ``kubernetes`` client, keeping a NodeCache current."""

    def __init__(self, cache: NodeCache, kubeconfig: str | None = None) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        if kubeconfig is None and config.incluster_config.SERVICE_HOST_ENV_NAME in os.environ:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        # Any: called with _preload_content=False, the client returns the raw urllib3 response.
        self._api: Any = client.CoreV1Api(client.ApiClient(configuration))
        self._cache = cache
        cache.fetch = self._read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="accelplan-node-watch", daemon=True)

    def start(self) -> None:
        """Start listing and watching in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current watch request ends (at most WATCH_SECONDS)."""
        self._stop.set()

    def _read(self, name: str) -> Mapping[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            response = self._api.read_node(name, _preload_content=False, _request_timeout=2)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        node: Mapping[str, Any] = orjson.loads(response.data)
        return node

    def _list(self) -> str:
        response = self._api.list_node(_preload_content=False)
        body = orjson.loads(response.data)
        self._cache.replace(body.get("items") or [])
        version = str(body["metadata"]["resourceVersion"])
        del body
        gc.collect()  # thousands of long-lived shapes and names: out of the collector's way
        gc.freeze()
        log.info("node cache: %d nodes, %d shapes", len(self._cache), self._cache.shape_count)
        return version

    def _watch(self, version: str) -> str:
        from kubernetes.watch.watch import iter_resp_lines

        response = self._api.list_node(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
        )
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    break
                event = orjson.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Expired
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self._cache.apply(kind, obj)
        finally:
            response.release_conn()
        return version

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        version: str | None = None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                backoff = 0.5
            except _Expired:
                version = None
            except ApiException as e:
                if e.status == 410:
                    version = None
                    continue
                log.warning("node watch: %s; retrying in %.1f s", e.reason, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as e:  # connection errors: keep the cache, try again
                log.warning("node watch: %s; retrying in %.1f s", e, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
