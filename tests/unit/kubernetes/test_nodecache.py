from __future__ import annotations

from typing import Any

from accelplan_server.adapters.kubernetes.nodecache import MAX_FETCHES, NodeCache
from accelplan_server.adapters.kubernetes.ranking import shape_of

H100 = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8", "zone": "a"}
L4 = {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "1"}


def _node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def test_list_then_watch_events() -> None:
    cache = NodeCache()
    assert not cache.synced.is_set()
    cache.replace([_node("a", H100), _node("b", {**H100, "zone": "b"}), _node("c", L4)])
    assert cache.synced.is_set() and len(cache) == 3
    assert cache.shape("a") is cache.shape("b")  # one shared object per shape: zones are not device labels
    assert cache.shape_count == 2
    cache.apply("MODIFIED", _node("c", H100))
    assert cache.shape("c") == shape_of(H100)
    cache.apply("DELETED", _node("a", H100))
    assert cache.shape("a") is None
    cache.apply("ADDED", _node("d", L4))
    assert cache.shapes(["d", "a", "c"]) == [shape_of(L4), None, shape_of(H100)]


def test_missing_names_are_read_once_and_reads_pause_after_a_failure() -> None:
    cache = NodeCache()
    cache.replace([])
    asked: list[str] = []

    def fetch(name: str) -> dict[str, Any] | None:
        asked.append(name)
        return _node(name, L4) if name.startswith("new") else None

    cache.fetch = fetch
    names = ["new-0", "gone"] + [f"new-{i}" for i in range(1, 40)]
    shapes = cache.shapes(names)
    assert len(asked) == MAX_FETCHES  # bounded per request
    assert shapes[0] == shape_of(L4) and shapes[1] is None
    assert cache.shape("new-0") == shape_of(L4)  # kept: the watch will confirm it

    def broken(name: str) -> dict[str, Any] | None:
        asked.append(name)
        raise ConnectionError("API server down")

    cache.fetch = broken
    before = len(asked)
    assert cache.shapes(["x", "y"]) == [None, None]
    assert cache.shapes(["x", "y"]) == [None, None]
    assert len(asked) == before + 1  # one failed read, then none until the pause ends
