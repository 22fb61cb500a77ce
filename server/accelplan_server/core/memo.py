"""Facts worked out once from an immutable value and kept on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

import cachetools

Fact = TypeVar("Fact")

MAX_MEMOS = 64
"""Facts one value keeps; past that the least recently used goes. The keys a value sees are few
(quantization level x strategy, settings of the speed model), so this bounds rather than limits; the
bytes of a cached value's facts are charged to the cache that holds it (rpc/convert.py's fleet weight)."""

_LOCK = threading.Lock()
"""Guards every memo table's bookkeeping (never held while a fact is computed)."""
_MISSING = object()


class Memoizing:
    """Mixin for immutable values (with a ``__dict__``) that remember facts derived from them.

    A validated fleet is reused for every request that sends it again, so
    per-device work (ordering, specs, encodings) is paid once per fleet rather
    than once per plan.
    """

    def memo(self, key: Hashable, compute: Callable[[], Fact]) -> Fact:
        """``compute()``, once per key while remembered; ``compute`` must depend only on this value and ``key``."""
        memos: cachetools.LRUCache[Hashable, Any] = self.__dict__.get("_memos") or self.__dict__.setdefault(
            "_memos", cachetools.LRUCache(MAX_MEMOS)
        )
        with _LOCK:
            value = memos.get(key, _MISSING)
        if value is not _MISSING:
            return cast(Fact, value)
        value = compute()
        with _LOCK:
            memos[key] = value
        return value
