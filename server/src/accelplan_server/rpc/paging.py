"""Opaque page tokens for list RPCs: an offset, tamper-checked against the query it belongs to."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

from accelplan_server.core.errors import invalid
from accelplan_server.rpc import limits

Item = TypeVar("Item")


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:12]


def page(
    items: Sequence[Item],
    page_size: int,
    token: str,
    query: str,
    *,
    default_size: int,
    max_size: int,
    size_of: Callable[[Item], int] | None = None,
    max_bytes: int = limits.MAX_PAGE_BYTES,
) -> tuple[Sequence[Item], str]:
    """(items on this page, next page token) for ``items``; bad sizes or tokens are InvalidArgument.

    With ``size_of`` (an item's encoded bytes) a page also ends before its items pass
    ``max_bytes``, so that it can be sent (it always holds at least one item).
    """
    if page_size < 0 or page_size > max_size:
        raise invalid("page_size", f"must be from 0 to {max_size} (0 means {default_size})")
    size = page_size or default_size
    start = 0
    if token:
        try:
            raw = base64.urlsafe_b64decode(token.encode()).decode()
            digest, offset = raw.split(":")
            start = int(offset)
        except Exception:
            raise invalid("page_token", "not a token returned by this RPC") from None
        if digest != _digest(query) or not 0 <= start <= len(items):
            raise invalid("page_token", "does not belong to this query; start again without a token")
    end = min(start + size, len(items))
    if size_of is not None:
        total = 0
        for i in range(start, end):
            total += size_of(items[i]) + 8  # tag and length of the repeated field
            if total > max_bytes and i > start:
                end = i
                break
    next_token = ""
    if end < len(items):
        next_token = base64.urlsafe_b64encode(f"{_digest(query)}:{end}".encode()).decode()
    return items[start:end], next_token
