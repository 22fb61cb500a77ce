"""The byte weights caches charge are upper bounds of what their entries keep alive (measured with tracemalloc).

core.cache bounds each cache by the weights its entries are charged; these tests
measure what a validated device and a cached fleet (after plans filled its memos
at every quantization level) really keep alive, and fail if a weight is below it.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, quantization_pb2, scheduling_pb2
from accelplan_server.core import cache
from accelplan_server.core.catalog import Catalog
from accelplan_server.rpc import convert, node_sets, shape_memo
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.planner import PlannerServicer
from accelplan_server.rpc.scheduler import SchedulerServicer
from tests.unit.test_caps_property import call
from tests.unit.test_rank_wire import SHAPES

LEVELS = [v.number for v in quantization_pb2.QuantizationLevel.DESCRIPTOR.values if v.number]


def _measure(work: Any) -> int:
    """Bytes still allocated (by Python) after ``work()``, with the result kept alive."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = work()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def _gpus(n: int, tag: str, name_chars: int) -> list[hardware_pb2.Accelerator]:
    return [
        hardware_pb2.Accelerator(
            type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU,
            memory_bytes=(16 + i % 4 * 16) << 30,
            memory_bandwidth_gigabytes_per_second=2000 + i % 3,
            numa_node=i % 2,
            name=f"{tag}-{i}-".ljust(name_chars, "n"),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("name_chars", [0, 256])
def test_a_device_weighs_no_less_than_it_keeps(name_chars: int) -> None:
    cache.set_total_bytes(cache.DEFAULT_TOTAL_BYTES)  # empty caches
    devices = _gpus(2000, f"d{name_chars}", name_chars)
    keys = [d.SerializeToString() for d in devices]
    fleet = hardware_pb2.Fleet(accelerators=devices)
    kept = _measure(lambda: convert.fleet(fleet, "fleet", Violations(), required=True))
    charged = sum(convert.device_weight(k) for k in keys) + convert.fleet_weight(fleet.SerializeToString(), 2000, 0)
    assert kept <= charged


def _tpus(n: int, tag: str, name_chars: int) -> list[hardware_pb2.Accelerator]:
    return [
        hardware_pb2.Accelerator(sku="tpu-v5p", tpu_chip_count=16384 // n, name=f"{tag}-{i}-".ljust(name_chars, "n"))
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("devices", "name_chars", "kind"),
    [(64, 0, "gpu"), (1024, 0, "gpu"), (1024, 256, "gpu"), (4096, 40, "gpu"), (4, 256, "tpu"), (64, 0, "tpu")],
)
def test_a_fleet_weighs_no_less_than_it_keeps_once_plans_filled_its_memos(
    devices: int, name_chars: int, kind: str, catalog: Catalog
) -> None:
    cache.set_total_bytes(cache.DEFAULT_TOTAL_BYTES)
    servicer = PlannerServicer(catalog, remember_answers=False)
    make = _gpus if kind == "gpu" else _tpus
    fleet = hardware_pb2.Fleet(accelerators=make(devices, f"{kind}{name_chars}", name_chars))
    chips = sum(d.tpu_chip_count for d in fleet.accelerators)
    models = [models_pb2.ModelSpec(parameter_count=n) for n in (7 * 10**9, 70 * 10**9, 2 * 10**12, 10**14)]
    models.append(models_pb2.ModelSpec(model_id="llama-3.1-405b"))

    def plans() -> None:
        for model in models:
            for level in LEVELS:
                code, _ = call(
                    servicer,
                    "PlanSharding",
                    planning_pb2.PlanShardingRequest(model=model, quantization=level, fleet=fleet),
                )
                assert code.name in ("OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION")  # a precision a device lacks
            call(servicer, "SuggestQuantization", planning_pb2.SuggestQuantizationRequest(model=model, fleet=fleet))

    kept = _measure(plans)
    wire = fleet.SerializeToString()
    keys = [d.SerializeToString() for d in fleet.accelerators]
    charged = convert.fleet_weight(wire, devices, chips) + sum(convert.device_weight(k) for k in keys)
    units = devices + chips
    print(
        f"{devices} {kind}s, {chips} chips, {name_chars}-char names: keeps {kept / units:.0f} B/unit, "
        f"charged {charged / units:.0f}"
    )
    assert kept <= charged


@pytest.mark.parametrize("context", [0, 8192])
def test_remembered_shape_results_weigh_no_less_than_they_keep(context: int, catalog: Catalog) -> None:
    servicer = SchedulerServicer(catalog)
    nodes = [(f"n{i}", labels) for i, labels in enumerate(SHAPES * 3)]
    servicer.rank_labels(scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-8b")), nodes)
    cache.set_total_bytes(cache.DEFAULT_TOTAL_BYTES)  # the label table's shapes stay; remembered results go
    workloads = [
        scheduling_pb2.Workload(
            model=models_pb2.ModelSpec(model_id=model), quantization=level, context_length=context, concurrency=c
        )
        for model in ("llama-3.1-8b", "llama-3.1-70b", "qwen2.5-72b")
        for level in (0, 2, 5)
        for c in (1, 16)
    ]

    def rank_all() -> None:
        for w in workloads:
            servicer.rank_labels(w, nodes)
            servicer.rank_labels(w, nodes, devices_per_replica=2)

    kept = _measure(rank_all)
    charged = shape_memo._RESULTS.nbytes
    count = len(shape_memo._RESULTS)
    print(f"{count} shape results: keep {kept / count:.0f} B each, charged {charged / count:.0f}")
    assert count == len(workloads) * 2 * len(SHAPES)  # every (workload, replica size, shape)
    assert kept <= charged


@pytest.mark.parametrize("name_chars", [4, 100])
def test_kept_node_sets_weigh_no_less_than_they_keep(name_chars: int, catalog: Catalog) -> None:
    servicer = SchedulerServicer(catalog)
    w = scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-8b"))
    requests = [
        scheduling_pb2.RankNodesRequest(
            workload=w,
            top_k=k,  # a different set of bytes each
            nodes=[
                scheduling_pb2.NodeInventory(name=f"{k}-{i}-".ljust(name_chars, "n"), labels=SHAPES[i % 4])
                for i in range(2000)
            ],
        ).SerializeToString()
        for k in range(4)
    ]
    for raw in requests:
        servicer.rank_bytes(raw)  # the label table's shapes and the shape results stay
    node_sets._SETS.clear()

    def rank_all() -> None:
        for raw in requests:
            servicer.rank_bytes(raw)

    kept = _measure(rank_all)
    charged = node_sets._SETS.nbytes
    count = len(node_sets._SETS)
    print(f"{count} node sets of 2,000 nodes: keep {kept / count:.0f} B each, charged {charged / count:.0f}")
    assert count == len(requests)
    assert kept <= charged
