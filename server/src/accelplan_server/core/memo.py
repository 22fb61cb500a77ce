"""Facts worked out once from an immutable value and kept on it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

Fact = TypeVar("Fact")

MAX_MEMOS = 64
"""Facts one value keeps; past that, further facts are worked out each time and not kept.

The keys a value sees form a small fixed set (quantization level x strategy, the speed model's
settings), so this is a safety net rather than a working limit, and a full table never starts over.
The bytes a cached value's facts hold are charged to the cache that keeps the value (rpc/convert.py's
fleet weight, measured by tests/unit/test_cache_weights.py)."""


class Memoizing:
    """Mixin for immutable values (with a ``__dict__``) that remember facts derived from them.

    A validated fleet is reused for every request that sends it again, so
    per-device work (ordering, specs, encodings) is paid once per fleet rather
    than once per plan. Reads take no lock (a dict lookup is atomic); two threads
    may work out the same fact at once, and the first one stored is kept.
    """

    def memo(self, key: Hashable, compute: Callable[[], Fact]) -> Fact:
        """``compute()``, once per key; ``compute`` must depend only on this value and ``key``."""
        memos: dict[Hashable, Any] = self.__dict__.setdefault("_memos", {})
        try:
            return cast(Fact, memos[key])
        except KeyError:
            value = compute()
            if len(memos) < MAX_MEMOS:
                value = memos.setdefault(key, value)
            return value
