"""SchedulerService core: the label table, feasibility reasons, policy orders, precision choice, artifacts."""

from __future__ import annotations

import argparse
import json
import re
from importlib import resources

import pytest

from accelplan.v1 import models_pb2, scheduling_pb2
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.errors import InvalidArgument, NotFound
from accelplan_server.core.hardware.accelerators import AcceleratorType
from accelplan_server.core.quantization import Quantization as Q
from accelplan_server.core.scheduling.labels import LabelTable
from accelplan_server.core.scheduling.rank import TooManyShapes
from accelplan_server.rpc import cost
from accelplan_server.rpc.deadlines import InlineBudget
from accelplan_server.rpc.scheduler import SchedulerServicer
from accelplan_server.rpc.status import Offload
from accelplan_server.runtime.context import HandlerContext

GIB = 2**30


@pytest.fixture(scope="module")
def servicer(catalog: Catalog) -> SchedulerServicer:
    return SchedulerServicer(catalog)


@pytest.fixture(scope="module")
def table(catalog: Catalog) -> LabelTable:
    return LabelTable(catalog)


def gfd(product: str, count: int, memory_mib: int | None = None) -> dict[str, str]:
    labels = {"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(count)}
    if memory_mib is not None:
        labels["nvidia.com/gpu.memory"] = str(memory_mib)
    return labels


def workload(model_id: str = "llama-3.1-70b", **kw: object) -> scheduling_pb2.Workload:
    return scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id=model_id), **kw)  # type: ignore[arg-type]


def rank(servicer: SchedulerServicer, w: scheduling_pb2.Workload, nodes: dict[str, dict[str, str]], **kw: object):  # type: ignore[no-untyped-def]
    return servicer.rank(
        scheduling_pb2.RankNodesRequest(
            workload=w,
            nodes=[scheduling_pb2.NodeInventory(name=n, labels=labels) for n, labels in nodes.items()],
            **kw,  # type: ignore[arg-type]
        )
    )


# ----- the label table -----

GFD_TO_SKU = {
    "NVIDIA-H100-80GB-HBM3": "h100-sxm",
    "NVIDIA-H100-PCIe": "h100-pcie",
    "NVIDIA-H100-NVL": "h100-sxm",
    "NVIDIA-H200": "h200-sxm",
    "NVIDIA-B200": "b200",
    "NVIDIA-A100-SXM4-80GB": "a100-80gb-sxm",
    "NVIDIA-A100-SXM4-40GB": "a100-40gb-sxm",
    "NVIDIA-A100-80GB-PCIe": "a100-80gb-pcie",
    "NVIDIA-A100-PCIE-40GB": "a100-40gb-sxm",
    "NVIDIA-L40S": "l40s",
    "NVIDIA-L4": "l4",
    "NVIDIA-A10G": "a10g",
    "Tesla-T4": "t4",
    "NVIDIA-GeForce-RTX-4090": "rtx-4090",
}


@pytest.mark.parametrize(("product", "sku"), sorted(GFD_TO_SKU.items()))
def test_gfd_product_maps_to_catalogue_sku(table: LabelTable, product: str, sku: str) -> None:
    shape = table.shape(gfd(product, 4))
    assert shape.sku == sku
    assert len(shape.fleet.accelerators) == 4
    assert {a.sku for a in shape.fleet.accelerators} == {sku}


def test_every_table_row_has_a_source_and_a_known_sku(catalog: Catalog) -> None:
    data = json.loads(resources.files("accelplan_server.data").joinpath("node_labels.json").read_text())
    for row in data["products"] + data["tpu_accelerators"]:
        assert row["source"].startswith("https://"), row
        assert catalog.accelerator(row["sku"]) is not None, row
    inexact = [r for r in data["products"] if not r["exact"]]
    assert inexact and all("not in the catalogue" in r["note"] for r in inexact)


def test_closest_entry_is_said(table: LabelTable) -> None:
    shape = table.shape(gfd("NVIDIA-A100-PCIE-40GB", 1))
    assert any("A100 PCIe 40GB is not in the catalogue" in a for a in shape.assumptions)


def test_memory_label_wins_over_the_sku(table: LabelTable) -> None:
    shape = table.shape(gfd("NVIDIA-L4", 1, 23034))
    assert shape.fleet.accelerators[0].memory_bytes == 23034 * 2**20


def test_unknown_product_uses_memory_label_and_says_so(table: LabelTable) -> None:
    shape = table.shape({**gfd("NVIDIA-RTX-PRO-6000", 2, 97887), "nvidia.com/gpu.family": "blackwell"})
    assert shape.sku == ""
    device = shape.fleet.accelerators[0]
    assert device.type is AcceleratorType.CUDA_GPU and device.memory_bytes == 97887 * 2**20 and device.supports_fp8
    assert any("not in the label table" in a for a in shape.assumptions)


def test_unknown_product_without_memory_is_a_bad_label(table: LabelTable) -> None:
    with pytest.raises(InvalidArgument) as e:
        table.shape(gfd("NVIDIA-Mystery", 1))
    assert e.value.violations[0].field == 'labels["nvidia.com/gpu.memory"]'


def test_mig_single_strategy(table: LabelTable) -> None:
    shape = table.shape({**gfd("NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", 2, 19968), "nvidia.com/mig.strategy": "single"})
    assert shape.sku == "a100-40gb-sxm"
    d = shape.fleet.accelerators[0]
    assert d.memory_bytes == 19968 * 2**20
    assert d.memory_bandwidth_gbps == pytest.approx(1555 * 3 / 7, rel=0.05)
    assert any("3/7 compute slices" in a for a in shape.assumptions)


def test_gke_tpu_labels(table: LabelTable) -> None:
    shape = table.shape(
        {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice", "cloud.google.com/gke-tpu-topology": "2x4"}
    )
    assert shape.sku == "tpu-v5e" and len(shape.fleet.accelerators) == 8
    multi = table.shape(
        {"cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice", "cloud.google.com/gke-tpu-topology": "2x2x4"}
    )
    assert len(multi.fleet.accelerators) == 4 and any("Multi-host" in a for a in multi.assumptions)


def test_amd_and_accelplan_and_instance_type_labels(table: LabelTable) -> None:
    amd = table.shape({"amd.com/gpu.device-id": "74a1", "accelplan.dev/accelerator.count": "8"})
    assert amd.sku == "mi300x" and len(amd.fleet.accelerators) == 8
    own = table.shape({"accelplan.dev/accelerator.sku": "gaudi3", "accelplan.dev/accelerator.count": "8"})
    assert own.sku == "gaudi3" and own.fleet.accelerators[0].type is AcceleratorType.GAUDI
    cloud = table.shape({"node.kubernetes.io/instance-type": "p4d.24xlarge"})
    assert cloud.sku == "a100-40gb-sxm" and len(cloud.fleet.accelerators) == 8


@pytest.mark.parametrize(
    ("labels", "field", "words"),
    [
        (gfd("NVIDIA-L4", 1) | {"nvidia.com/gpu.memory": "lots"}, 'labels["nvidia.com/gpu.memory"]', "not a number"),
        (gfd("NVIDIA-L4", 1) | {"nvidia.com/gpu.count": "x"}, 'labels["nvidia.com/gpu.count"]', "not a number"),
        (gfd("NVIDIA-L4", 0), 'labels["nvidia.com/gpu.count"]', "from 1 to"),
        ({"accelplan.dev/accelerator.sku": "nope"}, 'labels["accelplan.dev/accelerator.sku"]', "no catalogue"),
        (
            {"cloud.google.com/gke-tpu-accelerator": "tpu-v9"},
            'labels["cloud.google.com/gke-tpu-accelerator"]',
            "unknown",
        ),
        (gfd("N" * 300, 1), 'labels["nvidia.com/gpu.product"]', "longer than 256"),
    ],
)
def test_bad_labels_name_the_label(table: LabelTable, labels: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        table.shape(labels)
    assert e.value.violations[0].field == field and words in e.value.violations[0].description


# ----- RankNodes -----


def test_reason_names_the_numbers(servicer: SchedulerServicer) -> None:
    r = rank(servicer, workload(quantization=6), {"l4": gfd("NVIDIA-L4", 2, 23034)}, devices_per_replica=2)
    v = r.verdicts[0]
    assert not v.feasible and v.unresolvable and v.score == 0
    assert v.reason == (
        "Needs 35.4 GiB per device at FP8 on 2 devices; NVIDIA-L4 has 22.5 GiB "
        "(20.2 GiB usable at 0.9 memory utilization)."
    )
    assert v.memory_per_device_bytes > 0.9 * v.device_memory_bytes


def test_precision_the_device_lacks_is_said(servicer: SchedulerServicer) -> None:
    r = rank(servicer, workload(quantization=6), {"a100": gfd("NVIDIA-A100-SXM4-80GB", 8)})
    assert r.verdicts[0].reason.startswith("NVIDIA-A100-SXM4-80GB does not run FP8")
    assert r.verdicts[0].unresolvable


def test_unspecified_precision_is_the_widest_that_fits(servicer: SchedulerServicer) -> None:
    nodes = {
        "h100x2": gfd("NVIDIA-H100-80GB-HBM3", 2),
        "h100x1": gfd("NVIDIA-H100-80GB-HBM3", 1),
        "a100x1": gfd("NVIDIA-A100-SXM4-80GB", 1),
    }
    # 1,024 tokens: INT8 weights of a 70B model (65.7 GiB) leave room on an A100 80GB (79.2 GiB as CUDA reports it)
    r = rank(servicer, workload(context_length=1024), nodes)
    got = {v.node_name: (v.quantization, v.device_count) for v in r.verdicts}
    assert got["h100x2"] == (Q.BFLOAT16, 2)
    assert got["h100x1"] == (Q.FP8, 1)  # BF16 needs more than one H100; FP8 is the widest that fits
    assert got["a100x1"] == (Q.INT8, 1)  # the A100 has no FP8


def test_devices_per_replica_is_exact(servicer: SchedulerServicer) -> None:
    nodes = {"h100x8": gfd("NVIDIA-H100-80GB-HBM3", 8), "h100x2": gfd("NVIDIA-H100-80GB-HBM3", 2)}
    r = rank(servicer, workload(quantization=3), nodes, devices_per_replica=4)
    by = {v.node_name: v for v in r.verdicts}
    assert by["h100x8"].feasible and by["h100x8"].device_count == 4 and by["h100x8"].tensor_parallel_size == 4
    assert by["h100x8"].replica_count == 2
    assert not by["h100x2"].feasible and by["h100x2"].reason == "Needs 4 devices per replica; the node has 2."


def test_busy_devices_are_resolvable(servicer: SchedulerServicer) -> None:
    from accelplan.v1 import hardware_pb2

    fleet = hardware_pb2.Fleet(
        accelerators=[hardware_pb2.Accelerator(sku="h100-sxm", unavailable=i > 0) for i in range(4)]
    )
    r = servicer.rank(
        scheduling_pb2.RankNodesRequest(
            workload=workload(quantization=3),
            nodes=[scheduling_pb2.NodeInventory(name="busy", fleet=fleet)],
            devices_per_replica=2,
        )
    )
    assert not r.verdicts[0].feasible and not r.verdicts[0].unresolvable


POLICY_NODES = {
    "h100x8": gfd("NVIDIA-H100-80GB-HBM3", 8),
    "a100x2": gfd("NVIDIA-A100-SXM4-80GB", 2),
    "l40sx4": gfd("NVIDIA-L40S", 4),
    "t4": gfd("Tesla-T4", 1),
}


@pytest.mark.parametrize(
    ("policy", "order"),
    [
        (1, ["a100x2", "l40sx4", "h100x8", "t4"]),  # BEST_FIT: fullest node first
        (0, ["a100x2", "l40sx4", "h100x8", "t4"]),  # UNSPECIFIED = BEST_FIT
        (2, ["h100x8", "l40sx4", "a100x2", "t4"]),  # MOST_HEADROOM: spread
        (3, ["h100x8", "a100x2", "l40sx4", "t4"]),  # FASTEST
    ],
)
def test_policy_orders(servicer: SchedulerServicer, policy: int, order: list[str]) -> None:
    r = rank(servicer, workload("llama-3.1-8b", quantization=3), POLICY_NODES, devices_per_replica=1, policy=policy)
    assert [v.node_name for v in r.verdicts] == order
    feasible = [v for v in r.verdicts if v.feasible]
    assert all(1 <= v.score <= 100 for v in feasible) and r.feasible_count == 3
    assert [v.score for v in feasible] == sorted((v.score for v in feasible), reverse=True)


def test_cheapest_uses_node_prices(servicer: SchedulerServicer) -> None:
    nodes = [
        scheduling_pb2.NodeInventory(name="dear", labels=gfd("NVIDIA-L4", 1), price_per_hour_usd=10.0),
        scheduling_pb2.NodeInventory(name="cheap", labels=gfd("NVIDIA-L4", 1), price_per_hour_usd=1.0),
    ]
    r = servicer.rank(scheduling_pb2.RankNodesRequest(workload=workload("llama-3.1-8b"), nodes=nodes, policy=4))
    assert [v.node_name for v in r.verdicts] == ["cheap", "dear"]
    assert r.verdicts[0].score == 100 and r.verdicts[1].score == 10
    assert r.verdicts[1].cost_per_million_tokens_usd == pytest.approx(10 * r.verdicts[0].cost_per_million_tokens_usd)


def test_nodes_of_one_shape_are_computed_once(servicer: SchedulerServicer) -> None:
    nodes = {f"n{i}": gfd("NVIDIA-L4", 1 + i % 2) for i in range(200)}
    r = rank(servicer, workload("llama-3.1-8b"), nodes, top_k=5)
    assert r.shape_count == 2 and len(r.verdicts) == 5 and r.feasible_count == 200


def test_a_budget_of_new_shapes_refuses_before_sizing_any(catalog: Catalog) -> None:
    """With inline_seconds, a ranking that would size more new shapes than it pays for is handed back
    (Offload over gRPC, TooManyShapes in-process); remembered shapes do not count; nothing else changes."""
    limited = SchedulerServicer(catalog, inline_seconds=3 * cost.PER_SHAPE_SECONDS)
    assert limited.max_fresh_shapes == 3
    memories = (60_000, 61_000, 62_000, 63_000, 64_000)
    nodes = {f"n{m}": gfd("NVIDIA-H100-80GB-HBM3", 8, m) for m in memories}
    w = workload(concurrency=3)
    with pytest.raises(TooManyShapes) as e:
        rank(limited, w, nodes)
    assert (e.value.fresh, e.value.limit) == (5, 3)
    request = scheduling_pb2.RankNodesRequest(
        workload=w, nodes=[scheduling_pb2.NodeInventory(name=n, labels=labels) for n, labels in nodes.items()]
    )
    with pytest.raises(Offload) as offload:
        limited.wire_methods()["RankNodes"](request.SerializeToString(), HandlerContext(None))
    assert offload.value.estimate_seconds == pytest.approx(5 * cost.PER_SHAPE_SECONDS)
    first = dict(list(nodes.items())[:3])
    rank(limited, w, first)  # three new shapes: within the budget, and now remembered
    assert rank(limited, w, nodes) == SchedulerServicer(catalog).rank(request)  # two new ones left


def test_an_inline_budget_hands_long_sizings_back(catalog: Catalog) -> None:
    """Past its seconds with work left, InlineBudget raises Offload (the whole estimated at the pace so far);
    a servicer given inline_seconds hands a RightSize back that way, and answers it without one."""
    budget = InlineBudget(0.0)
    budget(3, 3)  # nothing left to do: no offload
    with pytest.raises(Offload) as e:
        budget(1, 45)
    assert e.value.estimate_seconds > 0
    request = scheduling_pb2.RightSizeRequest(workload=workload("llama-3.1-8b", concurrency=7))
    with pytest.raises(Offload):
        SchedulerServicer(catalog, inline_seconds=0.0).right_size(request)
    assert SchedulerServicer(catalog, inline_seconds=60.0).right_size(request) == SchedulerServicer(catalog).right_size(
        request
    )


def test_slo_miss_names_the_number(servicer: SchedulerServicer) -> None:
    r = rank(
        servicer, workload(quantization=3, min_decode_tokens_per_second=500), {"h": gfd("NVIDIA-H100-80GB-HBM3", 8)}
    )
    v = r.verdicts[0]
    assert not v.feasible
    assert re.fullmatch(
        r"Decode [\d.]+ tokens/s per sequence at BF16 on 8 devices is below the required 500\.", v.reason
    )


def test_bad_request_paths(servicer: SchedulerServicer) -> None:
    nodes = [scheduling_pb2.NodeInventory(name=f"n{i}", labels=gfd("NVIDIA-L4", 1)) for i in range(13)]
    nodes[12].labels["nvidia.com/gpu.memory"] = "lots"
    nodes[3].name = "n2"
    with pytest.raises(InvalidArgument) as e:
        servicer.rank(scheduling_pb2.RankNodesRequest(workload=workload(), nodes=nodes))
    fields = {v.field for v in e.value.violations}
    assert fields == {'nodes[12].labels["nvidia.com/gpu.memory"]', "nodes[3].name"}
    assert "not a number" in str(e.value)


def test_node_cap(servicer: SchedulerServicer) -> None:
    nodes = [scheduling_pb2.NodeInventory(name=f"n{i}", labels=gfd("NVIDIA-L4", 1)) for i in range(10_001)]
    with pytest.raises(InvalidArgument) as e:
        servicer.rank(scheduling_pb2.RankNodesRequest(workload=workload(), nodes=nodes))
    assert e.value.violations[0].field == "nodes"
    ok = servicer.rank(
        scheduling_pb2.RankNodesRequest(workload=workload("llama-3.1-8b"), nodes=nodes[:10_000], top_k=1)
    )
    assert ok.feasible_count == 10_000


def test_context_longer_than_the_model_is_invalid(servicer: SchedulerServicer) -> None:
    with pytest.raises(InvalidArgument) as e:
        rank(servicer, workload("llama-3.1-8b", context_length=10**6), {"a": gfd("NVIDIA-L4", 1)})
    assert e.value.violations[0].field == "workload.context_length"


def test_unknown_model_is_not_found(servicer: SchedulerServicer) -> None:
    with pytest.raises(NotFound):
        rank(servicer, workload("no-such-model"), {"a": gfd("NVIDIA-L4", 1)})


def test_rank_labels_matches_rank(servicer: SchedulerServicer) -> None:
    w = workload("llama-3.1-8b")
    nodes = dict(POLICY_NODES)
    via_proto = rank(servicer, w, nodes)
    via_dicts = servicer.rank_labels(w, list(nodes.items()))
    assert [v.node_name for v in via_proto.verdicts] == [v.node_name for v in via_dicts.verdicts]
    assert [v.score for v in via_proto.verdicts] == [v.score for v in via_dicts.verdicts]
    assert [v.reason for v in via_proto.verdicts] == [v.shape.reason for v in via_dicts.verdicts]


# ----- RightSize and artifacts -----


def vllm_parser() -> argparse.ArgumentParser:
    """The vLLM `vllm serve` arguments accelplan emits, with vLLM's own names and choices.

    From https://docs.vllm.ai/en/v0.8.5/serving/engine_args.html (--dtype, --kv-cache-dtype and
    --quantization choices as listed there).
    """
    p = argparse.ArgumentParser(exit_on_error=False)
    p.add_argument("--tensor-parallel-size", type=int)
    p.add_argument("--pipeline-parallel-size", type=int)
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--max-num-seqs", type=int)
    p.add_argument("--dtype", choices=["auto", "half", "float16", "bfloat16", "float", "float32"])
    p.add_argument("--kv-cache-dtype", choices=["auto", "fp8", "fp8_e5m2", "fp8_e4m3"])
    p.add_argument("--quantization", choices=["aqlm", "awq", "fp8", "gptq", "squeezellm", "gptq_marlin", "marlin"])
    return p


QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_right_size_artifacts(servicer: SchedulerServicer) -> None:
    r = servicer.right_size(
        scheduling_pb2.RightSizeRequest(
            workload=workload(context_length=8192, concurrency=4, kv_cache_quantization=6), max_devices=8
        )
    )
    assert r.variants and r.context_length == 8192
    parser = vllm_parser()
    for v in r.variants:
        art = v.artifacts
        ns = parser.parse_args(list(art.vllm_args))
        assert (
            ns.tensor_parallel_size == v.tensor_parallel_size and ns.pipeline_parallel_size == v.pipeline_parallel_size
        )
        assert ns.max_model_len == 8192 and ns.max_num_seqs == 4 and ns.kv_cache_dtype == "fp8"
        assert v.tensor_parallel_size * v.pipeline_parallel_size == v.device_count
        for key in list(art.kubernetes_resource_limits) + list(art.kubernetes_node_selector):
            assert QUALIFIED_NAME.match(key) and len(key.split("/")[-1]) <= 63, key
        for value in art.kubernetes_node_selector.values():
            assert LABEL_VALUE.match(value) and len(value) <= 63, value
        for value in art.kubernetes_resource_limits.values():
            assert value == str(v.device_count)
        if v.quantization == Q.FP8:
            assert ns.quantization == "fp8"
        elif v.quantization == Q.BFLOAT16:
            assert ns.dtype == "bfloat16"
    h100 = next(v for v in r.variants if v.sku == "h100-sxm")
    assert dict(h100.artifacts.kubernetes_resource_limits) == {"nvidia.com/gpu": str(h100.device_count)}
    assert dict(h100.artifacts.kubernetes_node_selector) == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert h100.artifacts.slurm_gres == f"gpu:h100:{h100.device_count}"
    assert [dict(b.resources) for b in h100.artifacts.ray_bundles] == [{"GPU": 1.0}] * h100.device_count
    assert h100.artifacts.ray_placement_strategy == scheduling_pb2.RAY_PLACEMENT_STRATEGY_STRICT_PACK
    assert h100.priced_instance.name and h100.cost_per_hour_usd == pytest.approx(
        h100.priced_instance.price_per_hour_usd / h100.priced_instance.accelerator_count * h100.device_count
    )
    tpu = next(v for v in r.variants if v.sku == "tpu-v5e")
    assert tpu.artifacts.kubernetes_resource_limits["google.com/tpu"] == str(tpu.device_count)
    assert tpu.artifacts.kubernetes_node_selector["cloud.google.com/gke-tpu-accelerator"] == "tpu-v5-lite-podslice"


def test_right_size_objectives_and_rejections(servicer: SchedulerServicer) -> None:
    def ask(objective: int, **kw: object) -> scheduling_pb2.RightSizeResponse:
        return servicer.right_size(
            scheduling_pb2.RightSizeRequest(
                workload=workload(**kw), skus=["h100-sxm", "l4", "t4", "a100-80gb-sxm"], objective=objective
            )
        )

    fewest = ask(1).variants
    assert [v.device_count for v in fewest] == sorted(v.device_count for v in fewest)
    fastest = ask(3).variants
    speeds = [v.decode_tokens_per_second for v in fastest]
    assert speeds == sorted(speeds, reverse=True)
    cheap = ask(2).variants
    costs = [v.cost_per_million_tokens_usd for v in cheap]
    assert costs == sorted(costs)
    slo = servicer.right_size(
        scheduling_pb2.RightSizeRequest(
            workload=workload(quantization=3, min_decode_tokens_per_second=40),
            skus=["h100-sxm", "l4", "t4", "a100-80gb-sxm"],
            max_devices=2,
        )
    )
    assert not slo.variants
    rejected = {j.sku: j for j in slo.rejected}
    assert rejected["t4"].cause == scheduling_pb2.REJECTION_CAUSE_PRECISION
    assert rejected["t4"].reason == "NVIDIA T4 16GB does not run BF16 (it runs FP32, FP16, INT8, INT4)."
    assert rejected["l4"].cause == scheduling_pb2.REJECTION_CAUSE_MEMORY
    assert rejected["l4"].reason.startswith(
        "Needs 67.3 GiB per device at BF16 on 2 devices; NVIDIA L4 24GB has 22.0 GiB"  # as CUDA reports it
    )
    assert rejected["a100-80gb-sxm"].cause == scheduling_pb2.REJECTION_CAUSE_DECODE_SPEED
    assert re.fullmatch(
        r"Decode [\d.]+ tokens/s per sequence at BF16 on 2 devices is below the required 40\.",
        rejected["a100-80gb-sxm"].reason,
    )
    assert rejected["a100-80gb-sxm"].device_count == 2


def test_right_size_unknown_sku_is_not_found(servicer: SchedulerServicer) -> None:
    with pytest.raises(NotFound) as e:
        servicer.right_size(scheduling_pb2.RightSizeRequest(workload=workload(), skus=["h100-sxm", "h900"]))
    assert e.value.field == "skus[1]"


def test_searches_are_bounded(servicer: SchedulerServicer) -> None:
    with pytest.raises(InvalidArgument) as e:
        servicer.right_size(scheduling_pb2.RightSizeRequest(workload=workload(), max_devices=65))
    assert e.value.violations[0].field == "max_devices"
    with pytest.raises(InvalidArgument) as e:
        rank(servicer, workload(), {"a": gfd("NVIDIA-L4", 1)}, devices_per_replica=1025)
    assert e.value.violations[0].field == "devices_per_replica"
    # A 256-GPU node is searched up to 64 devices per replica; the reason says where it stopped.
    huge = scheduling_pb2.Workload(model=models_pb2.ModelSpec(parameter_count=2 * 10**12), quantization=3)
    big = rank(servicer, huge, {"pod": gfd("NVIDIA-L4", 256)})
    assert big.verdicts[0].reason.startswith("Needs ") and "at BF16 on 64 devices" in big.verdicts[0].reason


def test_gke_gpu_and_neuron_instance_labels(table: LabelTable) -> None:
    gke = table.shape(
        {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb", "node.kubernetes.io/instance-type": "a3-highgpu-8g"}
    )
    assert gke.sku == "h100-sxm" and len(gke.fleet.accelerators) == 8 and not gke.assumptions
    lone = table.shape({"cloud.google.com/gke-accelerator": "nvidia-l4"})
    assert lone.sku == "l4" and len(lone.fleet.accelerators) == 1 and "assumed 1 GPU" in lone.assumptions[0]
    inf2 = table.shape({"node.kubernetes.io/instance-type": "inf2.48xlarge"})
    assert inf2.sku == "inferentia2" and len(inf2.fleet.accelerators) == 12
    assert inf2.fleet.accelerators[0].type is AcceleratorType.AWS_NEURON
    with pytest.raises(InvalidArgument) as e:
        table.shape({"cloud.google.com/gke-accelerator": "nvidia-tesla-k1"})
    assert e.value.violations[0].field == 'labels["cloud.google.com/gke-accelerator"]'


def test_no_nodes_is_invalid(servicer: SchedulerServicer) -> None:
    with pytest.raises(InvalidArgument) as e:
        servicer.rank(scheduling_pb2.RankNodesRequest(workload=workload()))
    assert [v.field for v in e.value.violations] == ["nodes"]


def test_a_repeated_right_size_is_answered_from_remembered_answers(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = SchedulerServicer(catalog)
    request = scheduling_pb2.RightSizeRequest(workload=workload("llama-3.1-8b", concurrency=3), skus=["l4", "h100-sxm"])
    calls = []
    real = fresh.right_size
    monkeypatch.setattr(fresh, "right_size", lambda r: calls.append(r) or real(r))
    first = fresh.RightSize(request, None)  # type: ignore[arg-type]
    again = fresh.RightSize(scheduling_pb2.RightSizeRequest.FromString(request.SerializeToString()), None)  # type: ignore[arg-type]
    assert again == first and len(calls) == 1
    request.max_devices = 4
    assert fresh.RightSize(request, None) is not None and len(calls) == 2  # type: ignore[arg-type]
