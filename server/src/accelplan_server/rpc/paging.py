"""Opaque page tokens for list RPCs: an offset, tamper-checked against the query it belongs to."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import TypeVar

from accelplan_server.core.errors import invalid

Item = TypeVar("Item")


def _digest(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:12]


def page(
    items: Sequence[Item], page_size: int, token: str, query: str, *, default_size: int, max_size: int
) -> tuple[Sequence[Item], str]:
    """(items on this page, next page token) for ``items``; bad sizes or tokens are InvalidArgument."""
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
    end = start + size
    next_token = ""
    if end < len(items):
        next_token = base64.urlsafe_b64encode(f"{_digest(query)}:{end}".encode()).decode()
    return items[start:end], next_token
