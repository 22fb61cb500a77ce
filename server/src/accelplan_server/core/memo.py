"""Facts worked out once from an immutable value and kept on it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

Fact = TypeVar("Fact")

MAX_MEMOS = 64
"""Facts one value keeps; more start its memo over."""


class Memoizing:
    """Mixin for immutable values (with a ``__dict__``) that remember facts derived from them.

    A validated fleet is reused for every request that sends it again, so
    per-device work (ordering, specs, encodings) is paid once per fleet rather
    than once per plan.
    """

    def memo(self, key: Hashable, compute: Callable[[], Fact]) -> Fact:
        """``compute()``, once per key; ``compute`` must depend only on this value and ``key``."""
        memos: dict[Hashable, Any] = self.__dict__.setdefault("_memos", {})
        try:
            return cast(Fact, memos[key])
        except KeyError:
            if len(memos) >= MAX_MEMOS:
                memos.clear()
            value = memos[key] = compute()
            return value
