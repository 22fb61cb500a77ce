"""Every numeric field of every request driven to its documented cap: never INTERNAL or UNKNOWN.

Each cap alone is accepted, so the products of capped values (head_dim x heads x
context x batch, ...) must either be answered or refused with INVALID_ARGUMENT
naming the fields; an answer must also encode (uint64 fields hold at most 2**64 - 1).
The caps come from rpc/limits.py and core/model/architecture.py; a new numeric
request field fails ``test_every_numeric_request_field_has_a_cap`` until it is given one.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelplan.v1 import hardware_pb2, models_pb2, planner_service_pb2, planning_pb2, training_pb2
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.model import architecture as arch
from accelplan_server.rpc import limits
from accelplan_server.rpc.planner import PlannerServicer

F = FieldDescriptor
SERVICE = planner_service_pb2.DESCRIPTOR.services_by_name["PlannerService"]
METHODS = list(SERVICE.methods)
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

CAPS: dict[str, float] = {
    # rpc/limits.py
    "context_length": limits.MAX_CONTEXT_LENGTH,
    "prompt_tokens": limits.MAX_CONTEXT_LENGTH,
    "output_tokens": limits.MAX_CONTEXT_LENGTH,
    "sequence_length": limits.MAX_CONTEXT_LENGTH,
    "max_batched_tokens": limits.MAX_CONTEXT_LENGTH,
    "batch_size": limits.MAX_BATCH_SIZE,
    "micro_batch_size": limits.MAX_BATCH_SIZE,
    "tensor_parallel_size": limits.MAX_PARALLEL_DEGREE,
    "pipeline_parallel_size": limits.MAX_PARALLEL_DEGREE,
    "data_parallel_size": limits.MAX_PARALLEL_DEGREE * 16,
    "quantization_group_size": limits.MAX_GROUP_SIZE,
    "parameter_count": limits.MAX_PARAMETER_COUNT,
    "memory_bytes": limits.MAX_MEMORY_BYTES,
    "tpu_chip_count": limits.MAX_FLEET_TPU_CHIPS,
    "min_tpu_chips": limits.MAX_TPU_CHIPS,
    "memory_bandwidth_gigabytes_per_second": limits.MAX_BANDWIDTH_GBPS,
    "bandwidth_gigabytes_per_second": limits.MAX_BANDWIDTH_GBPS,
    "peak_dense_teraflops_16bit": limits.MAX_TERAFLOPS,
    "page_size": limits.MAX_PAGE_SIZE_MODELS,
    # planner.py's own bounds
    "lora_rank": 65536,
    "qlora_bits": 16,
    "zero_stage": 3,
    "bits": 64,
    "decode_mbu": 1.0,
    "decode_mfu": 1.0,
    "prefill_mfu": 1.0,
    "gpu_memory_utilization": 1.0,
    # the whole uint range: no cap beyond the type
    "available_memory_bytes": UINT64_MAX,
    "device_id": UINT32_MAX,
    "numa_node": UINT32_MAX,
    "neuron_core_count": UINT32_MAX,
    # core/model/architecture.py
    "num_hidden_layers": arch.MAX_LAYERS,
    "first_k_dense_replace": arch.MAX_LAYERS,
    "moe_layer_freq": arch.MAX_LAYERS,
    "sliding_window_pattern": arch.MAX_LAYERS,
    "num_attention_heads": arch.MAX_HEADS,
    "num_key_value_heads": arch.MAX_HEADS,
    "num_local_experts": arch.MAX_EXPERTS,
    "num_experts_per_tok": arch.MAX_EXPERTS,
    "n_shared_experts": arch.MAX_EXPERTS,
    **{
        name: arch.MAX_DIMENSION
        for name in (
            "hidden_size",
            "head_dim",
            "intermediate_size",
            "vocab_size",
            "max_position_embeddings",
            "kv_lora_rank",
            "q_lora_rank",
            "qk_nope_head_dim",
            "qk_rope_head_dim",
            "v_head_dim",
            "moe_intermediate_size",
            "sliding_window",
        )
    },
}
NUMERIC = {
    F.TYPE_INT32,
    F.TYPE_INT64,
    F.TYPE_UINT32,
    F.TYPE_UINT64,
    F.TYPE_SINT32,
    F.TYPE_SINT64,
    F.TYPE_FIXED32,
    F.TYPE_FIXED64,
    F.TYPE_SFIXED32,
    F.TYPE_SFIXED64,
    F.TYPE_DOUBLE,
    F.TYPE_FLOAT,
}
WORDS = ["", "bf16", "llama-3.1-70b", "llama-3.1-8b", "aws", "h100-sxm", "tpu-v5p", "q_proj", "all-linear"]


def _numeric_fields(desc: Descriptor, seen: set[str]) -> set[str]:
    names: set[str] = set()
    if desc.full_name in seen:
        return names
    seen.add(desc.full_name)
    for fd in desc.fields:
        if fd.type == F.TYPE_MESSAGE and not fd.message_type.full_name.startswith("google."):
            names |= _numeric_fields(fd.message_type, seen)
        elif fd.type in NUMERIC:
            names.add(fd.name)
    return names


def test_every_numeric_request_field_has_a_cap() -> None:
    fields: set[str] = set()
    for method in METHODS:
        fields |= _numeric_fields(method.input_type, set())
    assert fields - CAPS.keys() == set()


def _value(fd: FieldDescriptor) -> st.SearchStrategy[Any]:
    cap = CAPS[fd.name]
    if fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.sampled_from([cap, cap, cap / 2, 1.0, 0.0])
    top = int(cap)
    if fd.name == "memory_bytes":
        return st.sampled_from([top, top, 80 << 30, 1])
    # Mostly at the cap: the products of capped values are what this test is about.
    return st.one_of(st.just(top), st.just(top), st.sampled_from([0, 1, 2, top - 1]), st.integers(0, top))


MODEL_IDS = ["llama-3.1-405b", "deepseek-v3", "mixtral-8x22b", "gemma-2-27b", "falcon-180b", "whisper-large-v3"]
SKUS = ["h100-sxm", "b200", "tpu-v5p", "gaudi3", "mi300x", "trainium2", "cpu-ddr5-8ch", "apple-m4-max"]
ARCHITECTURE_CORE = {
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
}
"""Set in every generated architecture (the rest only sometimes), so that most pass validation and get computed."""


def _strategy(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Requests whose every numeric field is at (or below) its cap, shaped to pass validation often.

    Messages and enums are always set (enums to a named, non-zero value), model ids and skus come
    from the catalogue, so that most examples reach the calculation rather than stopping at a
    missing field.
    """
    cls = message_factory.GetMessageClass(desc)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for fd in desc.fields:
        target = optional
        if fd.type in NUMERIC:
            single = _value(fd)
            if (desc.name, fd.name) == ("Accelerator", "memory_bytes") or (
                desc.name == "ModelArchitecture" and fd.name in ARCHITECTURE_CORE
            ):
                target = required
        elif fd.type == F.TYPE_ENUM:
            named = [v.number for v in fd.enum_type.values if v.number] or [0]
            single, target = st.sampled_from(named), required
        elif fd.type == F.TYPE_BOOL:
            single = st.booleans()
        elif fd.name == "layer_types":
            continue  # must match num_hidden_layers entry for entry: sliding_window_pattern covers windows
        elif fd.name == "hf_config_json":
            single = _strategy(models_pb2.ModelArchitecture.DESCRIPTOR, depth + 1).map(
                lambda m: json.dumps(json_format.MessageToDict(m, preserving_proto_field_name=True))
            )
        elif fd.name == "model_id":
            single = st.sampled_from(MODEL_IDS)
        elif fd.name == "sku":
            single = st.sampled_from(SKUS)
        elif fd.type == F.TYPE_STRING:
            single = st.sampled_from(WORDS)
        elif fd.type == F.TYPE_MESSAGE and depth < 4 and not fd.message_type.full_name.startswith("google."):
            single, target = _strategy(fd.message_type, depth + 1), required
        else:
            continue
        if fd.is_repeated:
            single = st.lists(single, min_size=1 if fd.name == "accelerators" else 0, max_size=3)
        if desc.name == "ModelSpec":  # one source each, chosen below
            target = optional
        target[fd.name] = single

    def build(values: dict[str, Any]) -> Any:
        msg = cls()
        if desc.name == "Accelerator" and values.get("sku"):
            values = {k: v for k, v in values.items() if k not in ("type", "memory_bytes")}  # the sku's
        for name, value in values.items():
            fd = desc.fields_by_name[name]
            if fd.is_repeated:
                getattr(msg, name).extend(value)
            elif fd.type == F.TYPE_MESSAGE:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    if desc.name == "ModelSpec":
        sources = [st.fixed_dictionaries({name: strategy}) for name, strategy in optional.items()]
        return st.one_of(sources).map(build)
    if desc.name == "ModelArchitecture":
        # The optional MoE/MLA/window fields one at a time, or none: each alone already reaches its cap.
        extras = st.one_of([st.just({})] + [st.fixed_dictionaries({k: v}) for k, v in optional.items()])
        same_kv = st.booleans()  # grouped-query heads must divide the heads: often simply equal

        def architecture(t: tuple[dict[str, Any], dict[str, Any], bool]) -> Any:
            values = {**t[0], **t[1]}
            if t[2]:
                values["num_key_value_heads"] = values["num_attention_heads"]
            return build(values)

        return st.tuples(st.fixed_dictionaries(required), extras, same_kv).map(architecture)
    return st.fixed_dictionaries(required, optional=optional).map(build)  # type: ignore[arg-type]


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, status: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


class Context:
    """The parts of grpc.ServicerContext the servicer uses."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code)

    def abort_with_status(self, status: Any) -> None:
        raise Aborted(status.code, status)

    def code(self) -> None:
        return None

    def time_remaining(self) -> None:
        return None

    def is_active(self) -> bool:
        return True


def call(servicer: PlannerServicer, method: str, request: Any) -> tuple[grpc.StatusCode, Any]:
    """(status code, the response or the status) of one in-process call; an escaping exception is UNKNOWN."""
    try:
        response = getattr(servicer, method)(request, Context())
    except Aborted as e:
        return e.code, e.status
    except Exception as e:  # what grpc would answer UNKNOWN
        return grpc.StatusCode.UNKNOWN, e
    response.SerializeToString()  # every field encodes
    return grpc.StatusCode.OK, response


@pytest.fixture(scope="module")
def servicer(catalog: Catalog) -> PlannerServicer:
    return PlannerServicer(catalog, remember_answers=False)


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_values_at_their_caps_never_fail_inside(method: Any, servicer: PlannerServicer) -> None:
    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_strategy(method.input_type))
    def check(request: Any) -> None:
        code, _ = call(servicer, method.name, request)
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), f"{method.name}: {request}"[:2000]

    check()


def _violated_fields(status: Any) -> set[str]:
    out: set[str] = set()
    for key, value in status.trailing_metadata:
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    out |= {v.field for v in bad.field_violations}
    return out


_HUGE_HEADS = models_pb2.ModelSpec(
    architecture=models_pb2.ModelArchitecture(
        num_hidden_layers=4,
        hidden_size=16384,
        num_attention_heads=16384,
        num_key_value_heads=16384,
        head_dim=16_777_216,
        vocab_size=1000,
        intermediate_size=1000,
    )
)


_LONG_THIN = models_pb2.ModelSpec(
    architecture=models_pb2.ModelArchitecture(
        num_hidden_layers=4096,
        hidden_size=1,
        num_attention_heads=16384,
        num_key_value_heads=16384,
        head_dim=16_777_216,
        vocab_size=1000,
        intermediate_size=1000,
    )
)
_ONE_H100 = hardware_pb2.Fleet(accelerators=[hardware_pb2.Accelerator(sku="h100-sxm")])


@pytest.mark.parametrize(
    ("method", "request_", "fields"),
    [
        (
            "PlanSharding",
            planning_pb2.PlanShardingRequest(model=_LONG_THIN, quantization=4, fleet=_ONE_H100),
            {"model.architecture"},
        ),
        (
            "SuggestQuantization",
            planning_pb2.SuggestQuantizationRequest(model=_LONG_THIN, fleet=_ONE_H100),
            {"model.architecture"},
        ),
        (
            "EstimateCapacity",
            planning_pb2.EstimateCapacityRequest(
                model=_HUGE_HEADS, quantization=4, fleet=_ONE_H100, context_length=1 << 24, batch_size=1 << 20
            ),
            {"model.architecture", "context_length", "batch_size", "fleet.accelerators"},
        ),
        (
            "EstimatePerformance",
            planning_pb2.EstimatePerformanceRequest(
                model=_HUGE_HEADS, quantization=4, fleet=_ONE_H100, batch_size=1 << 20, prompt_tokens=1 << 24
            ),
            {"model.architecture", "batch_size", "prompt_tokens"},
        ),
        (
            "EstimateMemory",
            planning_pb2.EstimateMemoryRequest(
                model=_HUGE_HEADS, quantization=4, context_length=1 << 24, batch_size=1 << 20
            ),
            {"model.architecture", "context_length", "batch_size"},
        ),
        (
            "EstimateTrainingMemory",
            training_pb2.EstimateTrainingMemoryRequest(
                model=models_pb2.ModelSpec(model_id="llama-3.1-70b"),
                method=training_pb2.TRAINING_METHOD_FULL_FINE_TUNE,
                sequence_length=16_777_216,
                micro_batch_size=1_048_576,
            ),
            {"model.model_id", "sequence_length", "micro_batch_size"},
        ),
    ],
)
def test_an_overflow_names_the_fields_whose_product_is_too_large(
    method: str, request_: Any, fields: set[str], servicer: PlannerServicer
) -> None:
    code, status = call(servicer, method, request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert _violated_fields(status) == fields
    assert "uint64" in status.details
