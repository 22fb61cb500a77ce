"""core.cache: LRU caches bounded in bytes, sharing one per-process budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accelplan_server.core import cache
from accelplan_server.rpc import answers, convert

assert answers and convert  # their caches register on import


@pytest.fixture(autouse=True)
def restore_budget() -> Iterator[None]:
    yield
    cache.set_total_bytes(cache.DEFAULT_TOTAL_BYTES)


def test_a_cache_holds_its_share_of_the_budget_least_recently_used_first_out() -> None:
    c: cache.ByteCache[int, str] = cache.ByteCache("test-lru", 0.5)
    cache.set_total_bytes(1000)
    assert c.capacity_bytes == 500
    for i in range(10):
        assert c.put(i, str(i), 100)
        c.get(0)  # keep 0 in use
    assert c.nbytes <= 500 and len(c) == 5
    assert c.get(0) == "0" and c.get(9) == "9" and c.get(1) is None


def test_an_entry_larger_than_the_share_is_not_kept_and_a_zero_budget_keeps_nothing() -> None:
    c: cache.ByteCache[int, str] = cache.ByteCache("test-large", 0.5)
    cache.set_total_bytes(1000)
    assert not c.put(1, "x", 501)
    assert c.get(1) is None
    cache.set_total_bytes(0)
    c.put_many([(2, "y", 10)])
    assert c.get_many([2]) == [None]
    with pytest.raises(ValueError):
        cache.set_total_bytes(-1)


def test_usage_names_every_request_keyed_cache() -> None:
    assert {"answers", "fleets", "devices"} <= set(cache.usage())
