"""RankNodes' per-shape results remembered across calls (core.scheduling.rank.ShapeMemo over a ByteCache).

A scheduler asks about one pod several times (the extender's filter, then its prioritize,
then the pod's replicas and retries) over the same few node shapes; sizing a shape costs
tens of microseconds, looking it up one. Entries are keyed by the servicer, the Workload's
deterministic wire bytes, the replica size and the shape's key, and bounded in bytes
(core.cache, SHAPES_SHARE of the process budget).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from accelplan_server.core.cache import ByteCache
from accelplan_server.core.scheduling.rank import ShapeResult

SHAPES_SHARE = 0.02
"""Share of the process's cache budget (5 MiB of the default 256 MiB: some 2,500 results)."""

RESULT_OVERHEAD_BYTES = 1024
"""A ShapeResult and its Attempt as Python objects and the entry's key tuple (an entry with its texts
measured at ~0.9 KB; tests/unit/test_cache_weights.py holds weights above what entries keep alive)."""

Key = tuple[object, bytes, int, tuple[object, ...]]

_RESULTS: ByteCache[Key, ShapeResult] = ByteCache("shape results", SHAPES_SHARE)


def _text_bytes(value: object) -> int:
    """Upper bound of what a key part or text keeps alive beyond the overhead (4 bytes a character)."""
    if isinstance(value, str):
        return 64 + 4 * len(value)
    if isinstance(value, bytes):
        return 48 + len(value)
    return 32


def result_weight(workload: bytes, key: tuple[object, ...], result: ShapeResult) -> int:
    """Bytes one remembered result holds alive (workload bytes counted in full though entries share them)."""
    texts = sum(map(_text_bytes, key)) + _text_bytes(result.reason) + sum(map(_text_bytes, result.assumptions))
    miss = _text_bytes(result.attempt.miss) if result.attempt is not None else 0
    return RESULT_OVERHEAD_BYTES + len(workload) + texts + miss


class ShapeMemo:
    """Results for one servicer, workload and replica size (build one per call)."""

    def __init__(self, owner: object, workload: bytes, devices_per_replica: int) -> None:
        self._owner = owner
        self._workload = workload
        self._devices = devices_per_replica

    def _key(self, key: tuple[object, ...]) -> Key:
        return (self._owner, self._workload, self._devices, key)

    def get_many(self, keys: Sequence[tuple[object, ...]]) -> list[ShapeResult | None]:
        """The result remembered for each shape key, or None."""
        return _RESULTS.get_many([self._key(k) for k in keys])

    def put_many(self, items: Iterable[tuple[tuple[object, ...], ShapeResult]]) -> None:
        """Remember (shape key, result) pairs."""
        workload = self._workload
        _RESULTS.put_many((self._key(k), r, result_weight(workload, k, r)) for k, r in items)
