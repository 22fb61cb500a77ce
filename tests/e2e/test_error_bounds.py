"""Errors stay small enough to arrive (issue 9, finding 5).

C-core clients drop trailers past 8-16 KiB and report RESOURCE_EXHAUSTED in place of
the error: grpc-message carries the first violation and a count, the BadRequest at
most 50 violations (the last saying how many were left out), and echoed values are cut.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from accelplan.v1 import hardware_pb2, models_pb2, planner_service_pb2_grpc, planning_pb2, training_pb2
from accelplan_server.rpc import status

pytestmark = pytest.mark.e2e

NO_MEMORY = hardware_pb2.Accelerator(type=hardware_pb2.ACCELERATOR_TYPE_CUDA_GPU)
BF16 = 4


def _bad_request(err: grpc.RpcError) -> error_details_pb2.BadRequest:
    st = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert st is not None, "no grpc-status-details-bin trailer"
    bad = error_details_pb2.BadRequest()
    assert st.details[0].Unpack(bad)
    return bad


def test_300_devices_without_memory_arrive_as_invalid_argument_with_violations(
    stub: planner_service_pb2_grpc.PlannerServiceStub,
) -> None:
    request = planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(parameter_count=70_000_000_000),
        quantization=BF16,
        fleet=hardware_pb2.Fleet(accelerators=[NO_MEMORY] * 300),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.PlanSharding(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    message = err.value.details()
    assert message.startswith("fleet.accelerators[0].memory_bytes: ")
    assert message.endswith("(and 299 more)")
    assert len(message) <= status.MAX_MESSAGE_CHARS
    fields = [v.field for v in _bad_request(err.value).field_violations]
    assert 2 <= len(fields) <= status.MAX_VIOLATIONS
    assert fields[:-1] == [f"fleet.accelerators[{i}].memory_bytes" for i in range(len(fields) - 1)]
    last = _bad_request(err.value).field_violations[-1]
    assert f"{300 - len(fields)} more violations were left out (300 in all)" in last.description


def test_echoed_values_are_cut(stub: planner_service_pb2_grpc.PlannerServiceStub) -> None:
    long_name = "m" * 6000
    request = training_pb2.EstimateTrainingMemoryRequest(
        model=models_pb2.ModelSpec(model_id="llama-3.1-8b"),
        method=training_pb2.TRAINING_METHOD_LORA,
        lora_target_modules=[long_name],
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.EstimateTrainingMemory(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(6000 characters)" in err.value.details()
    assert len(err.value.details()) <= status.MAX_MESSAGE_CHARS
    (violation,) = _bad_request(err.value).field_violations
    assert len(violation.description) <= status.MAX_DESCRIPTION_CHARS

    digits = "9" * 4000
    config = '{"num_hidden_layers": 2, "hidden_size": ' + digits + ', "num_attention_heads": 2, "vocab_size": 10}'
    with pytest.raises(grpc.RpcError) as err:
        stub.EstimateMemory(
            planning_pb2.EstimateMemoryRequest(model=models_pb2.ModelSpec(hf_config_json=config), quantization=BF16),
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(4000 digits)" in err.value.details()
    assert digits[:100] not in err.value.details()
    assert all(digits[:100] not in v.description for v in _bad_request(err.value).field_violations)
