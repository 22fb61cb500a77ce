"""Building accelplan.v1 response messages from core values."""

from __future__ import annotations

from typing import Any

from accelplan.v1 import cost_pb2, hardware_pb2, models_pb2, planning_pb2, quantization_pb2
from accelplan_server.core import quantization as quant
from accelplan_server.core.catalog import AcceleratorModel, CloudInstance, ModelEntry
from accelplan_server.core.hardware import accelerators as hw
from accelplan_server.core.model.footprint import Footprint
from accelplan_server.core.planning.sharding import Plan
from accelplan_server.rpc import convert
from accelplan_server.rpc.shard_wire import check_shards_fit, encoded_shards
from accelplan_server.rpc.uint64 import Fit

_ARCHITECTURE_FIELDS = {f.name for f in models_pb2.ModelArchitecture.DESCRIPTOR.fields}
_ARCHITECTURE_ALIASES = {"n_routed_experts": "num_local_experts", "num_kv_heads": "num_key_value_heads"}


def level_info(level: quant.Quantization) -> quantization_pb2.QuantizationLevelInfo:
    """The QuantizationLevelInfo message for a level."""
    return quantization_pb2.QuantizationLevelInfo(
        level=convert.level_value(level),
        bits_per_param=level.bits,
        memory_reduction_factor=level.memory_reduction_factor,
        display_name=level.display_name,
    )


def architecture_message(config: dict[str, Any]) -> models_pb2.ModelArchitecture:
    """The ModelArchitecture message for a config.json mapping (keys it has no field for are dropped)."""
    msg = models_pb2.ModelArchitecture()
    for key, value in config.items():
        name = _ARCHITECTURE_ALIASES.get(key, key)
        if name not in _ARCHITECTURE_FIELDS or value is None or isinstance(value, (dict, float)):
            continue
        if name == "layer_types":
            msg.layer_types.extend(value)
        elif isinstance(value, (bool, int, str)):
            setattr(msg, name, value)
    return msg


def model_info(m: ModelEntry) -> models_pb2.ModelInfo:
    """The ModelInfo message for a catalogue entry."""
    msg = models_pb2.ModelInfo(
        id=m.id,
        name=m.name,
        family=m.family,
        parameter_count=m.parameter_count,
        active_parameter_count=m.active_parameter_count,
        hf_repo=m.hf_repo,
        default_quantization=convert.level_value(m.default_quantization),
        max_context_length_tokens=m.max_context_length,
        source_url=m.source_url,
    )
    if m.architecture:
        msg.architecture.CopyFrom(architecture_message(m.architecture))
    return msg


def plan_message(
    plan: Plan, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None, fit: Fit
) -> planning_pb2.ShardingPlan:
    """The ShardingPlan message; each shard's accelerator is the fleet device it runs on.

    A device the caller described in full is echoed from ``fleet_msg`` (the
    message ``fleet`` was validated from) as sent; one completed from its sku or
    generation is rebuilt from the validated device.
    """
    fit("shards.memory_bytes", max((lay.memory_bytes for lay in plan.layouts), default=0))
    check_shards_fit(plan, fleet, fleet_msg)  # before encoding: never build an answer that cannot be sent
    msg = planning_pb2.ShardingPlan(
        strategy=convert.strategy_value(plan.strategy),
        device_count=plan.device_count,
        total_memory_bytes=fit("total_memory_bytes", plan.total_memory_bytes),
        fits_in_memory=plan.fits_in_memory,
        layer_count=plan.layer_count,
        assumptions=plan.assumptions,
    )
    msg.MergeFromString(encoded_shards(plan, fleet, fleet_msg))
    if plan.tokens_per_second is not None:
        msg.estimated_tokens_per_second = plan.tokens_per_second
    return msg


def memory_message(fp: Footprint, fit: Fit) -> planning_pb2.MemoryEstimate:
    """The MemoryEstimate message for a footprint; ``fit`` checks its byte counts."""
    fmt, shape = fp.weight_format, fp.shape
    return planning_pb2.MemoryEstimate(
        parameter_count=fp.profile.parameter_count,
        active_parameter_count=fp.profile.active_parameter_count,
        quantization=convert.level_value(fmt.quantization),
        weights_bytes=fit("weights_bytes", fp.weights_bytes),
        kv_cache_bytes=fit("kv_cache_bytes", fp.kv_cache_bytes),
        kv_cache_bytes_per_token=fit("kv_cache_bytes_per_token", fp.kv_cache_bytes_per_token),
        activation_bytes=fit("activation_bytes", fp.activation_bytes),
        overhead_bytes=fit("overhead_bytes", fp.overhead_bytes),
        total_bytes=fit("total_bytes", fp.total_bytes),
        assumptions=fp.assumptions,
        assumed=planning_pb2.MemoryAssumptions(
            architecture_known=fp.architecture_known,
            context_length=shape.context_length,
            batch_size=shape.batch_size,
            kv_cache_bits=shape.kv_bits,
            linear_weight_bits=fmt.linear_bits_per_weight() if fp.architecture_known else float(fmt.quantization.bits),
            quantization_group_size=fmt.group_size,
            tensor_parallel_size=shape.tensor_parallel,
            max_batched_tokens=shape.max_batched_tokens,
        ),
    )


_LEVEL_BY_DTYPE = {
    "fp32": quant.Quantization.NONE,
    "fp16": quant.Quantization.FLOAT16,
    "bf16": quant.Quantization.BFLOAT16,
    "int8": quant.Quantization.INT8,
    "int4": quant.Quantization.INT4,
    "fp8": quant.Quantization.FP8,
}


def accelerator_model_message(a: AcceleratorModel, retrieved: str = "") -> hardware_pb2.AcceleratorModel:
    """The AcceleratorModel message for a hardware catalogue entry."""
    return hardware_pb2.AcceleratorModel(
        sku=a.sku,
        name=a.name,
        vendor=a.vendor,
        type=hardware_pb2.AcceleratorType.ValueType(int(a.type)),
        memory_bytes=a.memory_bytes,
        memory_bandwidth_gigabytes_per_second=a.memory_bandwidth_gbps,
        peaks=[hardware_pb2.PeakThroughput(precision=k, dense_teraflops=v) for k, v in a.peak_tflops.items()],
        supported_quantizations=[
            convert.level_value(_LEVEL_BY_DTYPE[d]) for d in a.supported_quantizations if d in _LEVEL_BY_DTYPE
        ],
        interconnect=a.interconnect,
        interconnect_bandwidth_gigabytes_per_second=a.interconnect_gbps,
        source_url=a.source_url,
        retrieved=a.retrieved,
    )


def instance_message(i: CloudInstance) -> cost_pb2.CloudInstance:
    """A catalogue cloud instance as its message."""
    return cost_pb2.CloudInstance(
        name=i.name,
        provider=i.provider,
        accelerator_name=i.accelerator_name,
        accelerator_count=i.accelerator_count,
        accelerator_memory_bytes=i.accelerator_memory_bytes,
        total_accelerator_memory_bytes=i.total_accelerator_memory_bytes,
        price_per_hour_usd=i.price_per_hour_usd,
        region=i.region,
        source_url=i.source_url,
        accelerator_sku=i.accelerator_sku,
    )
