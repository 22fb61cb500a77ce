"""Closest known names for a name that is not known (did you mean ...?)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_SUGGESTIONS = 3


def closest(name: str, known: Iterable[str], n: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to ``n`` known names: those that start with ``name`` (shortest first), then difflib's closest."""
    wanted = name.strip().lower()
    names = sorted(set(known))
    prefixed = sorted((k for k in names if wanted and k.lower().startswith(wanted)), key=lambda k: (len(k), k))
    similar = difflib.get_close_matches(wanted, [k.lower() for k in names], n=n, cutoff=0.5)
    by_lower = {k.lower(): k for k in names}
    picks: list[str] = []
    for k in [*prefixed, *(by_lower[s] for s in similar)]:
        if k not in picks:
            picks.append(k)
    return picks[:n]


def did_you_mean(suggestions: list[str]) -> str:
    """``; did you mean a, b, c?`` or the empty string."""
    return f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
