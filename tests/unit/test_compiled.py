"""The compiled fast paths (server/setup.py, Cython) against their plain-Python references.

Each compiled module is one loop behind a plain function; these tests feed both the same inputs
(every label branch, bad labels, other Mapping types; long and short verdicts, any order) and
require equal answers and equal errors.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from accelplan_server.core.catalog import load_catalog
from accelplan_server.core.scheduling import labels, rank
from accelplan_server.core.scheduling.labels import LabelTable, NodeShape
from accelplan_server.rpc import rank_wire
from accelplan_server.runtime import compiled


def test_compiled_modules_are_built() -> None:
    """`make` installs with a C compiler (server/setup.py); without one the plain paths run, 10x slower."""
    from accelplan_server.core.scheduling import _label_keys, _rank_order
    from accelplan_server.rpc import _verdicts

    assert labels._compiled is _label_keys
    assert rank._compiled is _rank_order
    assert rank_wire._compiled is _verdicts


NODES: list[Mapping[str, str]] = [
    {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8", "nvidia.com/gpu.memory": "81559"},
    {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "4", "nvidia.com/gpu.memory": "81559"},
    {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "1", "nvidia.com/gpu.family": "ada-lovelace"},
    {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2", "nvidia.com/gpu.clique": "c1.0"},
    {"nvidia.com/gpu.product": "Mystery-GPU", "nvidia.com/gpu.count": "2", "nvidia.com/gpu.memory": "16384"},
    {
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb",
        "nvidia.com/gpu.count": "2",
        "nvidia.com/gpu.memory": "19968",
        "nvidia.com/mig.strategy": "single",
    },
    {
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/gpu.count": "1",
        "nvidia.com/mig.strategy": "mixed",
        "nvidia.com/mig-3g.40gb.count": "1",
        "nvidia.com/mig-1g.10gb.count": "3",
    },
    {"accelplan.dev/accelerator.sku": "gaudi3", "accelplan.dev/accelerator.count": "8"},
    {"accelplan.dev/accelerator.sku": "h100-sxm", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    {"amd.com/gpu.device-id": "74a1", "accelplan.dev/accelerator.count": "8"},
    {"amd.com/gpu.product-name": "AMD_Instinct_MI300X", "amd.com/gpu.vram": "192G"},
    {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "2x4"},
    {"cloud.google.com/gke-accelerator": "nvidia-l4", "node.kubernetes.io/instance-type": "g2-standard-4"},
    {"node.kubernetes.io/instance-type": "p4d.24xlarge"},
    {"node.kubernetes.io/instance-type": "inf2.48xlarge"},
    {"kubernetes.io/os": "linux"},
    {},
]
"""One node of each label branch ``labels._key`` takes."""

BAD: list[Mapping[str, str]] = [
    {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "many"},
    {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "1", "nvidia.com/gpu.memory": "x" * 300},
    {"accelplan.dev/accelerator.sku": "nope"},
    {"cloud.google.com/gke-tpu-accelerator": "tpu-v9"},
]


def _node(rng: random.Random, i: int, pool: list[Mapping[str, str]]) -> Mapping[str, str]:
    """A node of a random pool shape with its own name labels; some not plain dicts."""
    labels = {**rng.choice(pool), "kubernetes.io/hostname": f"node-{i}", "pool": f"p{i % 3}"}
    return MappingProxyType(labels) if i % 11 == 0 else labels


def _described(shapes: list[NodeShape]) -> list[tuple[object, ...]]:
    return [(s.key, s.fleet, s.product, s.sku, s.assumptions) for s in shapes]


@pytest.mark.parametrize("seed", range(6))
def test_label_shapes_match_the_plain_path(seed: int) -> None:
    rng = random.Random(seed)
    pool = NODES + (BAD if seed % 2 else [])
    catalog = load_catalog()
    compiled_table, plain_table = LabelTable(catalog), LabelTable(catalog)
    for _ in range(3):  # cold (every shape new), then warm (every shape remembered)
        nodes = [_node(rng, i, pool) for i in range(rng.randrange(1, 400))]
        got, got_errors = compiled_table.shapes(nodes)
        want, want_errors = plain_table.plain_shapes(nodes)
        assert _described(got) == _described(want)
        assert [(i, e.violations) for i, e in got_errors] == [(i, e.violations) for i, e in want_errors]
        for shape, node in zip(got, [n for i, n in enumerate(nodes) if i not in dict(got_errors)], strict=True):
            assert shape.key == labels._key(node.get, node)


def test_compiled_keys_match_plain_keys() -> None:
    """Every shape the compiled loop finds was stored under the key ``_key`` gives that node."""
    table = LabelTable(load_catalog())
    table.plain_shapes(NODES)  # remember each
    assert labels._compiled is not None
    found, missed = labels._compiled.shapes(list(NODES), table._cache, labels.KEYS)
    for i, node in enumerate(NODES):
        if i in missed:
            assert found[i] is None
        else:
            assert found[i] is table._cache[labels._key(node.get, node)]
    assert len(missed) <= 3  # the two MIG nodes, and the one sku label beside a GFD product may only miss


def _verdict_case(rng: random.Random) -> tuple[list[int], list[object], list[bytes], dict[object, bytes]]:
    n = rng.randrange(0, 600)
    groups = [object() for _ in range(rng.randrange(1, 25))]
    sizes = [0, 1, 50, 126, 127, 128, 200, 16_383, 16_384, 20_000]
    tail_of = {g: rng.randbytes(rng.choice(sizes)) for g in groups}
    keys = [rng.choice(groups) for _ in range(n)]
    heads = rank_wire.name_fields([f"node-{i}-" + "x" * rng.choice([0, 1, 120, 300]) for i in range(n)])
    order = list(range(n))
    rng.shuffle(order)
    return order[: rng.randrange(0, n + 1)], keys, heads, tail_of


@pytest.mark.parametrize("seed", range(20))
def test_encode_verdicts_matches_the_plain_path(seed: int) -> None:
    order, keys, heads, tail_of = _verdict_case(random.Random(seed))
    want = rank_wire.plain_encode_verdicts(order, keys, heads, tail_of)
    assert rank_wire.encode_verdicts(order, keys, heads, tail_of) == want
    assert rank_wire.encode_verdicts(tuple(order), tuple(keys), tuple(heads), tail_of) == want


def test_encode_verdicts_refuses_what_the_plain_path_refuses() -> None:
    _, keys, heads, tail_of = _verdict_case(random.Random(99))
    keys = keys or [object()]
    heads = heads or [b"\x0a\x01a"]
    for bad_order, error in (([len(keys) + 5], IndexError), ([-1 - len(keys)], IndexError)):
        with pytest.raises(error):
            rank_wire.plain_encode_verdicts(bad_order, keys, heads, tail_of)
        with pytest.raises(error):
            rank_wire.encode_verdicts(bad_order, keys, heads, tail_of)
    with pytest.raises(KeyError):
        rank_wire.encode_verdicts([0], [object()], heads, tail_of)


@pytest.mark.parametrize("seed", range(20))
def test_rank_order_matches_the_plain_sort(seed: int) -> None:
    rng = random.Random(seed)
    groups = [object() for _ in range(rng.randrange(1, 30))]
    sort_value = {g: rng.choice([0, 1, 37, 99, 100, rank.INFEASIBLE]) for g in groups}
    keys = [rng.choice(groups) for _ in range(rng.randrange(0, 3000))]
    assert rank._compiled is not None
    assert rank._compiled.order(keys, sort_value, rank.INFEASIBLE) == rank.plain_order(keys, sort_value)
    assert rank._compiled.order(tuple(keys), sort_value, rank.INFEASIBLE) == rank.plain_order(keys, sort_value)


def test_rank_order_refuses_values_it_cannot_count() -> None:
    g = object()
    assert rank._compiled is not None
    for bad, error in ((-1, ValueError), (1024, ValueError), (2**70, OverflowError), (1.5, TypeError)):
        with pytest.raises(error):
            rank._compiled.order([g], {g: bad}, rank.INFEASIBLE)  # type: ignore[dict-item]
    with pytest.raises(KeyError):
        rank._compiled.order([object()], {g: 1}, rank.INFEASIBLE)


def test_every_compiled_module_is_listed_and_checked_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    """runtime.compiled.MODULES (the start-up check) names exactly the .pyx sources setup.py builds."""
    src = Path(compiled.__file__).resolve().parents[2]
    sources = {".".join(p.relative_to(src).with_suffix("").parts) for p in src.rglob("*.pyx")}
    assert set(compiled.MODULES) == sources
    assert compiled.missing() == []
    with caplog.at_level(logging.WARNING, logger="accelplan.server"):
        compiled.warn_if_missing()
    assert caplog.records == []


def test_a_plain_install_is_told_at_start_up(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(compiled, "MODULES", (*compiled.MODULES, "accelplan_server.rpc._not_built"))
    with caplog.at_level(logging.WARNING, logger="accelplan.server"):
        compiled.warn_if_missing()
    assert "_not_built" in caplog.text and "_verdicts" not in caplog.text
