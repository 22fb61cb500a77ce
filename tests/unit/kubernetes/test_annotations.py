from __future__ import annotations

from typing import Any

import pytest

from accelplan.v1 import quantization_pb2, scheduling_pb2
from accelplan_server.adapters.kubernetes.annotations import AnnotationError, pod_workload


def _pod(
    annotations: dict[str, Any] | None = None, limits: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main"}
    if limits is not None:
        container["resources"] = {"limits": limits}
    return {"metadata": {"name": "p", "annotations": annotations or {}}, "spec": {"containers": [container], **spec}}


def test_pods_without_accelplan_annotations_are_not_ours() -> None:
    assert pod_workload(_pod()) is None
    assert pod_workload(_pod({"example.com/x": "1"}, {"nvidia.com/gpu": "2"})) is None
    assert pod_workload({}) is None


def test_single_value_annotations() -> None:
    pw = pod_workload(
        _pod(
            {
                "accelplan.dev/model": "llama-3.1-70b",
                "accelplan.dev/quantization": "fp8",
                "accelplan.dev/context-length": "8192",
                "accelplan.dev/concurrency": "16",
                "accelplan.dev/kv-cache-quantization": "int8",
                "accelplan.dev/policy": "fastest",
            },
            {"nvidia.com/gpu": "2"},
        )
    )
    assert pw is not None
    w = pw.workload
    assert w.model.model_id == "llama-3.1-70b"
    assert w.quantization == quantization_pb2.QUANTIZATION_LEVEL_FP8
    assert (w.context_length, w.concurrency, w.kv_cache_quantization) == (
        8192,
        16,
        quantization_pb2.QUANTIZATION_LEVEL_INT8,
    )
    assert (pw.devices, pw.resource, pw.policy) == (2, "nvidia.com/gpu", scheduling_pb2.PLACEMENT_POLICY_FASTEST)


def test_a_bare_parameter_count() -> None:
    pw = pod_workload(_pod({"accelplan.dev/model": "70B"}))
    assert pw is not None and pw.workload.model.parameter_count == 70 * 10**9
    assert (pw.devices, pw.resource) == (0, "")


def test_workload_as_proto3_json_and_overrides() -> None:
    workload = '{"model": {"modelId": "llama-3.1-8b"}, "contextLength": 32768, "minDecodeTokensPerSecond": 20}'
    pw = pod_workload(_pod({"accelplan.dev/workload": workload, "accelplan.dev/context-length": "4096"}))
    assert pw is not None
    assert pw.workload.model.model_id == "llama-3.1-8b"
    assert pw.workload.context_length == 4096  # the single-value annotation wins
    assert pw.workload.HasField("min_decode_tokens_per_second") and pw.workload.min_decode_tokens_per_second == 20


def test_device_count_sums_containers_and_takes_the_init_peak() -> None:
    pod = _pod({"accelplan.dev/model": "70B"}, {"amd.com/gpu": "2"})
    pod["spec"]["containers"].append({"name": "side", "resources": {"limits": {"amd.com/gpu": "1"}}})
    pod["spec"]["initContainers"] = [{"name": "warm", "resources": {"limits": {"amd.com/gpu": "4"}}}]
    pw = pod_workload(pod)
    assert pw is not None and (pw.devices, pw.resource) == (4, "amd.com/gpu")
    pod["spec"]["initContainers"] = []
    pw = pod_workload(pod)
    assert pw is not None and pw.devices == 3


@pytest.mark.parametrize(
    ("annotations", "limits", "needle"),
    [
        ({"accelplan.dev/quantization": "bf16"}, None, "accelplan.dev/model is required"),
        ({"accelplan.dev/model": ""}, None, "accelplan.dev/model: empty"),
        ({"accelplan.dev/model": "70B", "accelplan.dev/context-length": "lots"}, None, "accelplan.dev/context-length"),
        ({"accelplan.dev/model": "70B", "accelplan.dev/concurrency": "-1"}, None, "accelplan.dev/concurrency"),
        ({"accelplan.dev/model": "70B", "accelplan.dev/quantization": "fp3"}, None, "unknown quantization"),
        ({"accelplan.dev/model": "70B", "accelplan.dev/policy": "random"}, None, "accelplan.dev/policy"),
        ({"accelplan.dev/model": "70B", "accelplan.dev/modle": "x"}, None, "unknown accelplan annotation"),
        ({"accelplan.dev/workload": "{not json"}, None, "proto3 JSON"),
        ({"accelplan.dev/workload": '{"model": {"modelId": "x"}, "bogus": 1}'}, None, "bogus"),
        ({"accelplan.dev/model": "70B"}, {"nvidia.com/gpu": "two"}, "nvidia.com/gpu"),
        ({"accelplan.dev/model": "70B"}, {"nvidia.com/gpu": "1", "amd.com/gpu": "1"}, "more than one kind"),
        ({"accelplan.dev/model": "x" * 70_000}, None, "at most"),
        ({"accelplan.dev/model": 7}, None, "must be a string"),
    ],
)
def test_malformed_annotations_say_which(
    annotations: dict[str, Any], limits: dict[str, str] | None, needle: str
) -> None:
    with pytest.raises(AnnotationError, match=needle):
        pod_workload(_pod(annotations, limits))
