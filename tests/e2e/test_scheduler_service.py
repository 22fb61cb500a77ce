"""SchedulerService on the real server: served beside PlannerService with health and reflection."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from accelplan.client import PlannerClient, PlannerError, prepare_nodes
from accelplan.v1 import models_pb2, scheduling_pb2
from tests.e2e.conftest import ServerProcess

SCHEDULER = "accelplan.v1.SchedulerService"


def test_health_and_reflection_list_the_scheduler(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=SCHEDULER), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
        assert {SCHEDULER, "accelplan.v1.PlannerService"} <= names


def test_rank_and_right_size_over_grpc(client: PlannerClient) -> None:
    workload = scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-70b"), quantization=6)
    ranked = client.rank_nodes(
        scheduling_pb2.RankNodesRequest(
            workload=workload,
            devices_per_replica=2,
            nodes=[
                scheduling_pb2.NodeInventory(
                    name="h100", labels={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"}
                ),
                scheduling_pb2.NodeInventory(
                    name="l4", labels={"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2"}
                ),
            ],
        )
    )
    assert [(v.node_name, v.feasible) for v in ranked.verdicts] == [("h100", True), ("l4", False)]
    sized = client.right_size(scheduling_pb2.RightSizeRequest(workload=workload, skus=["h100-sxm"], top_k=1))
    assert sized.variants[0].artifacts.kubernetes_resource_limits["nvidia.com/gpu"] == str(
        sized.variants[0].device_count
    )


def test_bad_label_is_invalid_argument_with_its_path(client: PlannerClient) -> None:
    request = scheduling_pb2.RankNodesRequest(
        workload=scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-8b")),
        nodes=[
            scheduling_pb2.NodeInventory(
                name="a", labels={"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.memory": "x"}
            )
        ],
    )
    try:
        client.rank_nodes(request)
    except PlannerError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in e.violations] == ['nodes[0].labels["nvidia.com/gpu.memory"]']
    else:
        raise AssertionError("expected INVALID_ARGUMENT")


def test_rank_nodes_wire_bytes_in_and_out(server: ServerProcess) -> None:
    """RankNodes is answered from the request's bytes (runtime wire methods): the same bytes as the
    per-message path, and INVALID_ARGUMENT for bytes that are no RankNodesRequest."""
    from accelplan_server.core.catalog import load_catalog
    from accelplan_server.rpc.scheduler import SchedulerServicer

    shapes = [
        {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8"},
        {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2"},
    ]
    request = scheduling_pb2.RankNodesRequest(
        workload=scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="llama-3.1-70b")),
        nodes=[scheduling_pb2.NodeInventory(name=f"node-{i}", labels=shapes[i % 2]) for i in range(200)],
        policy=scheduling_pb2.PLACEMENT_POLICY_CHEAPEST,
    )
    expected = SchedulerServicer(load_catalog()).rank_plain(request).SerializeToString()
    with grpc.insecure_channel(server.address) as channel:
        rpc = channel.unary_unary(f"/{SCHEDULER}/RankNodes", request_serializer=None, response_deserializer=None)
        assert rpc(request.SerializeToString(), timeout=30) == expected
        bad_name = request.SerializeToString().replace(b"node-7", b"node\xff7", 1)
        for payload in (b"\x12\x05ab", bad_name):
            try:
                rpc(payload, timeout=30)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "not a valid accelplan.v1.RankNodesRequest" in (e.details() or "")
            else:
                raise AssertionError("expected INVALID_ARGUMENT")


def test_rank_prepared_answers_as_rank_nodes(client: PlannerClient) -> None:
    """Nodes serialized once (prepare_nodes), a workload per call: the same answers as whole requests."""
    shapes = [
        {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8", "zone": "a"},
        {"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "2", "zone": "b"},
    ]
    base = scheduling_pb2.RankNodesRequest(
        workload=scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id="left-out")),
        nodes=[scheduling_pb2.NodeInventory(name=f"node-{i}", labels=shapes[i % 2]) for i in range(300)],
        policy=scheduling_pb2.PLACEMENT_POLICY_FASTEST,
        top_k=50,
    )
    prepared = prepare_nodes(base)
    assert base.workload.model.model_id == "left-out"  # the caller's request is untouched
    for model, context in (("llama-3.1-70b", 8192), ("qwen2.5-32b", 0), ("llama-3.1-8b", 2048)):
        workload = scheduling_pb2.Workload(model=models_pb2.ModelSpec(model_id=model), context_length=context)
        whole = scheduling_pb2.RankNodesRequest()
        whole.CopyFrom(base)
        whole.workload.CopyFrom(workload)
        assert client.rank_prepared(workload, prepared) == client.rank_nodes(whole)
    try:
        client.rank_prepared(None, prepared)
    except PlannerError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert any(v.field.startswith("workload") for v in e.violations)
    else:
        raise AssertionError("expected INVALID_ARGUMENT for a request without a workload")
