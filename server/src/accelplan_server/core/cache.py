"""Caches bounded in bytes: every cache a request can fill draws on one per-process budget.

Each entry is weighed when it is stored (its serialized size, or a measured
estimate of what it keeps alive, key included); the least recently used entries
go first when a cache is over its share of the budget, and an entry larger than
the whole share is not stored at all. ``set_total_bytes`` (the serve flag
``--cache-bytes``) sets the budget; each cache gets a fixed share of it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import cachetools

DEFAULT_TOTAL_BYTES = 256 << 20
"""Bytes all caches of one process may hold together, unless set_total_bytes says otherwise."""

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class _Entry(NamedTuple):
    value: object
    nbytes: int


def _weight(entry: _Entry) -> int:
    return entry.nbytes


class ByteCache(Generic[Key, Value]):
    """A thread-safe LRU cache holding at most ``share`` of the process's cache budget, in bytes."""

    def __init__(self, name: str, share: float) -> None:
        self.name = name
        self.share = share
        self._lock = threading.Lock()
        self._cache: cachetools.LRUCache[Key, _Entry] = cachetools.LRUCache(
            max(1, int(_total_bytes * share)), getsizeof=_weight
        )
        _CACHES.append(self)

    def get(self, key: Key) -> Value | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._cache.get(key)
        return None if entry is None else entry.value  # type: ignore[return-value]

    def put(self, key: Key, value: Value, nbytes: int) -> bool:
        """Store ``value`` weighing ``nbytes`` (evicting the least recently used); False if it alone is too large."""
        with self._lock:
            if nbytes > self._cache.maxsize:
                self._cache.pop(key, None)
                return False
            self._cache[key] = _Entry(value, nbytes)
            return True

    def get_many(self, keys: Sequence[Key]) -> list[Value | None]:
        """``get`` for each key, under one lock (for the devices of a fleet)."""
        with self._lock:
            found = self._cache.get
            entries = [found(key) for key in keys]
        return [None if e is None else e.value for e in entries]  # type: ignore[misc]

    def put_many(self, items: Iterable[tuple[Key, Value, int]]) -> None:
        """``put`` for each (key, value, nbytes), under one lock."""
        with self._lock:
            cache, limit = self._cache, self._cache.maxsize
            for key, value, nbytes in items:
                if nbytes <= limit:
                    cache[key] = _Entry(value, nbytes)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._cache.clear()

    @property
    def nbytes(self) -> int:
        """Bytes the entries weigh together."""
        return int(self._cache.currsize)

    @property
    def capacity_bytes(self) -> int:
        """Bytes this cache may hold."""
        return int(self._cache.maxsize)

    def __len__(self) -> int:
        return len(self._cache)

    def _resize(self, total: int) -> None:
        with self._lock:
            self._cache = cachetools.LRUCache(max(1, int(total * self.share)), getsizeof=_weight)


_total_bytes = DEFAULT_TOTAL_BYTES
_CACHES: list[ByteCache[Any, Any]] = []


def set_total_bytes(total: int) -> None:
    """Set the budget all caches share (each keeps its share of it); entries stored so far are dropped."""
    global _total_bytes
    if total < 0:
        raise ValueError("the cache budget must be at least 0 bytes")
    _total_bytes = total
    for cache in _CACHES:
        cache._resize(total)


def total_bytes() -> int:
    """The budget all caches share, in bytes."""
    return _total_bytes


def usage() -> dict[str, tuple[int, int]]:
    """Each cache's (bytes held, bytes allowed), by name."""
    return {c.name: (c.nbytes, c.capacity_bytes) for c in _CACHES}
