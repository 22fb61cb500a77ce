"""Request validation and conversion between accelplan.v1 messages and core values.

Validation collects every bad field of a request (with its path, e.g.
``fleet.accelerators[2].memory_bytes``) before anything is computed, and
raises one InvalidArgument naming them all.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, quantization_pb2, training_pb2
from accelplan_server.core.cache import ByteCache
from accelplan_server.core.catalog import AcceleratorModel, Catalog
from accelplan_server.core.errors import FieldViolation, InvalidArgument, NotFound, shown
from accelplan_server.core.hardware import accelerators as hw
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.footprint import ModelProfile
from accelplan_server.core.names import closest, did_you_mean
from accelplan_server.core.planning.engines import Engine
from accelplan_server.core.quantization import Quantization
from accelplan_server.rpc import limits


class Violations:
    """Collects field violations (and unknown names) for one request."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []
        self.missing: list[NotFound] = []

    def add(self, field: str, description: str) -> None:
        """Record one bad field."""
        self.items.append(FieldViolation(field, description))

    def extend(self, error: InvalidArgument) -> None:
        """Record every violation of ``error``."""
        self.items.extend(error.violations)

    def raise_if_any(self) -> None:
        """Raise InvalidArgument if a field is bad, else NotFound if a name is unknown."""
        if self.items:
            raise InvalidArgument(self.items)
        if self.missing:
            raise self.missing[0]


def enum_value(enum_cls: type[enum.IntEnum], value: int, field: str, bad: Violations, *, required: bool) -> int | None:
    """``value`` when it names a member of ``enum_cls`` (0 allowed unless required), else a violation."""
    if value == 0 and required:
        bad.add(field, "must be set")
        return None
    if value != 0 and value not in enum_cls._value2member_map_:
        bad.add(field, f"unknown enum value {value}")
        return None
    return value


def quantization(value: int, field: str, bad: Violations) -> Quantization | None:
    """A required quantization level."""
    v = enum_value(Quantization, value, field, bad, required=True)
    return None if v is None else Quantization(v)


def engine(value: int, field: str, bad: Violations) -> Engine:
    """An optional serving engine (UNSPECIFIED: the server-engine default)."""
    v = enum_value(Engine, value, field, bad, required=False)
    return Engine(v or 0)


def string(value: str, field: str, bad: Violations) -> str:
    """A string within the length cap."""
    if len(value) > limits.MAX_STRING_LENGTH:
        bad.add(field, f"longer than {limits.MAX_STRING_LENGTH} characters")
    return value


class ModelRef(NamedTuple):
    """A validated ModelSpec: a raw count, a catalogue id (looked up later) or a parsed architecture."""

    parameter_count: int = 0
    model_id: str = ""
    architecture: Architecture | None = None
    field: str = "model"

    def resolve(self, catalog: Catalog, profiles: Mapping[str, ModelProfile]) -> ModelProfile:
        """The model's profile; NotFound for an unknown catalogue id."""
        if self.model_id:
            entry = catalog.model(self.model_id, f"{self.field}.model_id")
            return profiles[entry.id]
        if self.architecture is not None:
            return ModelProfile.from_architecture(self.architecture)
        return ModelProfile.from_count(self.parameter_count)


def architecture_config(msg: models_pb2.ModelArchitecture) -> dict[str, Any]:
    """The config.json-style mapping of the fields a ModelArchitecture sets."""
    config: dict[str, Any] = {f.name: value for f, value in msg.ListFields()}
    if "layer_types" in config:
        config["layer_types"] = list(config["layer_types"])
    return config


def _parse_config_json(text: str, field: str, bad: Violations) -> dict[str, Any] | None:
    if len(text) > limits.MAX_CONFIG_JSON_CHARS:
        bad.add(field, f"longer than {limits.MAX_CONFIG_JSON_CHARS} characters")
        return None
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as e:
        bad.add(field, f"not valid JSON: {e}")
        return None
    if not isinstance(config, dict):
        bad.add(field, "must be a JSON object")
        return None
    return config  # multimodal configs (text_config) are read by Architecture.from_config


def model_spec(msg: models_pb2.ModelSpec, field: str, bad: Violations, *, present: bool) -> ModelRef:
    """Validate a ModelSpec; ``present`` is whether the request set the field at all."""
    which = msg.WhichOneof("source") if present else None
    if which is None:
        bad.add(field, "set parameter_count, model_id, architecture or hf_config_json")
        return ModelRef(field=field)
    if which == "parameter_count":
        count = msg.parameter_count
        if count == 0:
            bad.add(f"{field}.parameter_count", "must be greater than 0")
        elif count > limits.MAX_PARAMETER_COUNT:
            bad.add(f"{field}.parameter_count", f"must be at most {limits.MAX_PARAMETER_COUNT:.0e}")
        return ModelRef(parameter_count=count, field=field)
    if which in ("architecture", "hf_config_json"):
        path = f"{field}.{which}"
        config = (
            architecture_config(msg.architecture)
            if which == "architecture"
            else _parse_config_json(msg.hf_config_json, path, bad)
        )
        if config is None:
            return ModelRef(field=field)
        try:
            arch = Architecture.from_config(config, path)
        except InvalidArgument as e:
            bad.extend(e)
            return ModelRef(field=field)
        if arch.parameters.total > limits.MAX_PARAMETER_COUNT:
            bad.add(
                path,
                f"describes {arch.parameters.total:.3g} parameters; at most "
                f"{limits.MAX_PARAMETER_COUNT:.0e} are accepted",
            )
            return ModelRef(field=field)
        return ModelRef(architecture=arch, field=field)
    model_id = string(msg.model_id, f"{field}.model_id", bad)
    if not model_id.strip():
        bad.add(f"{field}.model_id", "must not be empty")
    return ModelRef(model_id=model_id, field=field)


def _finite_non_negative(value: float, cap: float, field: str, bad: Violations) -> float:
    if math.isnan(value) or value < 0 or value > cap:
        bad.add(field, f"must be a number from 0 to {cap:g}")
        return 0.0
    return value


def accelerator(
    msg: hardware_pb2.Accelerator, field: str, bad: Violations, skus: Mapping[str, AcceleratorModel] | None = None
) -> hw.Accelerator | None:
    """Validate one Accelerator message; a catalogue ``sku`` fills in the fields left at zero."""
    before = len(bad.items)
    sku = (skus or {}).get(msg.sku.strip().lower()) if msg.sku else None
    if msg.sku and sku is None:
        if len(msg.sku) > limits.MAX_STRING_LENGTH:
            bad.add(f"{field}.sku", f"longer than {limits.MAX_STRING_LENGTH} characters")
        else:
            suggestions = tuple(closest(msg.sku, (skus or {}).keys()))
            bad.missing.append(
                NotFound(
                    f"{field}.sku",
                    f"no accelerator sku {shown(msg.sku)}{did_you_mean(list(suggestions))} "
                    "(`accelplan hardware` or ListAcceleratorModels lists every sku)",
                    reason="UNKNOWN_SKU",
                    name=msg.sku,
                    suggestions=suggestions,
                )
            )
        return None
    kind = enum_value(
        hw.AcceleratorType, msg.type or (int(sku.type) if sku else 0), f"{field}.type", bad, required=True
    )
    if sku is not None and kind is not None and kind != sku.type:
        bad.add(f"{field}.type", f"is {hw.AcceleratorType(kind).name} but sku {sku.sku!r} is {sku.type.name}")
    sku_memory = sku.memory_bytes * max(1, msg.tpu_chip_count) if sku else 0
    memory = (
        msg.memory_bytes
        or sku_memory
        or hw.default_memory_bytes(
            hw.AcceleratorType(kind) if kind else None, msg.tpu_version, msg.gaudi_generation, msg.tpu_chip_count
        )
    )
    if memory == 0:
        bad.add(
            f"{field}.memory_bytes",
            "must be greater than 0 (only a TPU with tpu_version or a Gaudi with gaudi_generation may leave it 0)",
        )
    elif memory > limits.MAX_MEMORY_BYTES:
        if msg.memory_bytes:
            bad.add(f"{field}.memory_bytes", f"must be at most {limits.MAX_MEMORY_BYTES} (1 PiB)")
        else:  # worked out from the sku or generation, per chip, times the chips
            bad.add(
                f"{field}.tpu_chip_count",
                f"gives the device {memory} bytes of memory ({memory / 2**50:.3g} PiB); "
                f"at most {limits.MAX_MEMORY_BYTES} (1 PiB) per device",
            )
    if msg.tpu_chip_count > limits.MAX_TPU_CHIPS:
        bad.add(f"{field}.tpu_chip_count", f"must be at most {limits.MAX_TPU_CHIPS}")
    tpu = enum_value(hw.TpuVersion, msg.tpu_version, f"{field}.tpu_version", bad, required=False)
    gaudi = enum_value(hw.GaudiGeneration, msg.gaudi_generation, f"{field}.gaudi_generation", bad, required=False)
    neuron = enum_value(hw.NeuronChipType, msg.neuron_chip_type, f"{field}.neuron_chip_type", bad, required=False)
    bandwidth = _finite_non_negative(
        msg.memory_bandwidth_gigabytes_per_second,
        limits.MAX_BANDWIDTH_GBPS,
        f"{field}.memory_bandwidth_gigabytes_per_second",
        bad,
    )
    name = string(msg.name, f"{field}.name", bad)
    peak = _finite_non_negative(
        msg.peak_dense_teraflops_16bit, limits.MAX_TERAFLOPS, f"{field}.peak_dense_teraflops_16bit", bad
    )
    if len(bad.items) > before or kind is None:
        return None
    if sku is not None:
        chips = max(1, msg.tpu_chip_count)
        bandwidth = bandwidth or sku.memory_bandwidth_gbps * chips
        peak = peak or sku.peak_tflops.get("bf16", sku.peak_tflops.get("fp16", 0.0)) * chips
    return hw.Accelerator(
        type=hw.AcceleratorType(kind),
        memory_bytes=memory,
        device_id=msg.device_id,
        available=not msg.unavailable,
        tpu_chip_count=msg.tpu_chip_count,
        tpu_version=hw.TpuVersion(tpu or 0),
        gaudi_generation=hw.GaudiGeneration(gaudi or 0),
        neuron_chip_type=hw.NeuronChipType(neuron or 0),
        neuron_core_count=msg.neuron_core_count,
        numa_node=msg.numa_node if msg.HasField("numa_node") else None,
        memory_bandwidth_gbps=bandwidth,
        name=name,
        sku=sku.sku if sku else "",
        peak_dense_tflops_16bit=peak,
        supports_fp8="fp8" in sku.supported_quantizations if sku else False,
        sku_quantizations=sku.levels if sku else (),
    )


DEVICES_SHARE = 0.08
"""Share of the process's cache budget for validated devices."""
FLEETS_SHARE = 0.4
"""Share of the process's cache budget for validated fleets (and the facts plans keep with them)."""
DEVICE_BYTES = 1024
"""What a validated device keeps alive beyond its name (measured: tests/unit/test_cache_weights.py)."""
FLEET_BYTES_PER_DEVICE = 3072
"""What a cached fleet keeps alive per device once plans have filled its memos, beyond the wire bytes
(tests/unit/test_cache_weights.py measures at most ~2.4 KiB)."""
FLEET_BYTES_PER_TPU_CHIP = 1024
"""The same per TPU chip: a tensor-parallel plan has a shard per chip (measured: at most ~700 bytes)."""
FLEET_BYTES_PER_WIRE_BYTE = 4
"""Names and echoed accelerators are kept per plan layout: the share that grows with the request's bytes."""
_DEVICE_CACHE: ByteCache[bytes, hw.Accelerator] = ByteCache("devices", DEVICES_SHARE)
"""Validated devices by their Accelerator message bytes (a pure function of them, so safe to share)."""
_FLEET_CACHE: ByteCache[tuple[int, bytes], hw.Fleet] = ByteCache("fleets", FLEETS_SHARE)
"""Validated fleets by the id of the sku table and the Fleet message's bytes."""


def device_weight(key: bytes) -> int:
    """Bytes a validated device cached under ``key`` keeps alive (a measured upper estimate)."""
    return 2 * len(key) + DEVICE_BYTES


def fleet_weight(key: bytes, devices: int, tpu_chips: int) -> int:
    """Bytes a validated fleet cached under ``key`` keeps alive, memos included (a measured upper estimate)."""
    return (
        FLEET_BYTES_PER_WIRE_BYTE * len(key)
        + FLEET_BYTES_PER_DEVICE * max(1, devices)
        + FLEET_BYTES_PER_TPU_CHIP * tpu_chips
    )


_ACCELERATOR_TYPES = {int(v): v for v in hw.AcceleratorType}
_TPU_VERSIONS = {int(v): v for v in hw.TpuVersion}
_GAUDI_GENERATIONS = {int(v): v for v in hw.GaudiGeneration}
_NEURON_CHIP_TYPES = {int(v): v for v in hw.NeuronChipType}


def _accelerator_fast(msg: hardware_pb2.Accelerator) -> hw.Accelerator | None:
    """``accelerator(msg)`` for a device that passes every check with its memory stated; None otherwise.

    Same result as ``accelerator`` (tests/unit/test_convert_fast.py checks), without building
    field paths or enum members per field: a 1,024-device fleet is on the hot path.
    """
    kind = _ACCELERATOR_TYPES.get(msg.type)
    tpu = _TPU_VERSIONS.get(msg.tpu_version)
    gaudi = _GAUDI_GENERATIONS.get(msg.gaudi_generation)
    neuron = _NEURON_CHIP_TYPES.get(msg.neuron_chip_type)
    memory = msg.memory_bytes
    chips = msg.tpu_chip_count
    bandwidth = msg.memory_bandwidth_gigabytes_per_second
    name = msg.name
    if (
        msg.sku
        or msg.peak_dense_teraflops_16bit
        or kind is None
        or tpu is None
        or gaudi is None
        or neuron is None
        or not 0 < memory <= limits.MAX_MEMORY_BYTES
        or chips > limits.MAX_TPU_CHIPS
        or not 0.0 <= bandwidth <= limits.MAX_BANDWIDTH_GBPS
        or len(name) > limits.MAX_STRING_LENGTH
    ):
        return None
    return hw.Accelerator(
        kind,
        memory,
        msg.device_id,
        not msg.unavailable,
        chips,
        tpu,
        gaudi,
        neuron,
        msg.neuron_core_count,
        msg.numa_node if msg.HasField("numa_node") else None,
        bandwidth,
        name,
    )


def fleet(
    msg: hardware_pb2.Fleet,
    field: str,
    bad: Violations,
    *,
    required: bool,
    skus: Mapping[str, AcceleratorModel] | None = None,
) -> hw.Fleet:
    """Validate a Fleet; ``required`` demands at least one accelerator; ``skus`` resolves Accelerator.sku."""
    # A scheduler sends the same fleet again and again: its wire bytes key the validated fleet.
    fleet_key = (id(skus), msg.SerializeToString())
    cached = _FLEET_CACHE.get(fleet_key)
    if cached is not None and (cached.accelerators or not required):
        return cached
    before = len(bad.items) + len(bad.missing)
    n = len(msg.accelerators)
    if n > limits.MAX_FLEET_ACCELERATORS:
        bad.add(f"{field}.accelerators", f"has {n} entries; at most {limits.MAX_FLEET_ACCELERATORS} are accepted")
        return hw.Fleet()
    if len(msg.interconnects) > limits.MAX_FLEET_INTERCONNECTS:
        bad.add(
            f"{field}.interconnects",
            f"has {len(msg.interconnects)} entries; at most {limits.MAX_FLEET_INTERCONNECTS} are accepted",
        )
        return hw.Fleet()
    if required and n == 0:
        bad.add(f"{field}.accelerators", "must list at least one accelerator")
    devices: list[hw.Accelerator | None] = []
    tpu_chips = 0
    # Schedulers send the same fleet again and again: a device's wire bytes key its validated value.
    # The common well-formed device takes the fast path; anything else gets the full check with field paths.
    keys = [a.SerializeToString() for a in msg.accelerators]
    new: list[tuple[bytes, hw.Accelerator, int]] = []
    for i, (a, key, device) in enumerate(zip(msg.accelerators, keys, _DEVICE_CACHE.get_many(keys), strict=True)):
        if device is None:
            device = _accelerator_fast(a)
            if device is None:
                device = accelerator(a, f"{field}.accelerators[{i}]", bad, skus)
            if device is not None and not a.sku:
                new.append((key, device, device_weight(key)))
        if device is not None and device.type is hw.AcceleratorType.TPU:
            tpu_chips += device.chips
        devices.append(device)
    _DEVICE_CACHE.put_many(new)
    if tpu_chips > limits.MAX_FLEET_TPU_CHIPS:
        # Tensor-parallel plans get one shard per chip: this bounds a plan's size and work.
        bad.add(
            f"{field}.accelerators",
            f"has {tpu_chips} TPU chips in total; at most {limits.MAX_FLEET_TPU_CHIPS} are accepted",
        )
    links = []
    for i, link in enumerate(msg.interconnects):
        path = f"{field}.interconnects[{i}]"
        kind = enum_value(hw.InterconnectKind, link.kind, f"{path}.kind", bad, required=True)
        bw = _finite_non_negative(
            link.bandwidth_gigabytes_per_second,
            limits.MAX_BANDWIDTH_GBPS,
            f"{path}.bandwidth_gigabytes_per_second",
            bad,
        )
        string(link.name, f"{path}.name", bad)
        if kind is not None:
            links.append(hw.Interconnect(hw.InterconnectKind(kind), bw, link.name))
    result = hw.Fleet(tuple(d for d in devices if d is not None), tuple(links))
    if len(bad.items) + len(bad.missing) == before:
        _FLEET_CACHE.put(fleet_key, result, fleet_weight(fleet_key[1], len(result.accelerators), tpu_chips))
    return result


# Core enums share the proto enums' numbers; these give the generated stubs their typed values.
def level_value(q: Quantization | None) -> quantization_pb2.QuantizationLevel.ValueType:
    """The proto QuantizationLevel for a core level (UNSPECIFIED for None)."""
    return quantization_pb2.QuantizationLevel.ValueType(int(q or 0))


def family_value(f: hw.Family) -> hardware_pb2.AcceleratorFamily.ValueType:
    """The proto AcceleratorFamily for a core family."""
    return hardware_pb2.AcceleratorFamily.ValueType(int(f))


def strategy_value(s: int) -> planning_pb2.ShardingStrategy.ValueType:
    """The proto ShardingStrategy for a core strategy."""
    return planning_pb2.ShardingStrategy.ValueType(int(s))


def method_value(m: int) -> training_pb2.TrainingMethod.ValueType:
    """The proto TrainingMethod for a core method."""
    return training_pb2.TrainingMethod.ValueType(int(m))


def target_value(t: int) -> training_pb2.TrainingTarget.ValueType:
    """The proto TrainingTarget for a core target."""
    return training_pb2.TrainingTarget.ValueType(int(t))


def accelerator_message(device: hw.Accelerator) -> hardware_pb2.Accelerator:
    """The Accelerator message for a core device (as the caller sent it)."""
    msg = hardware_pb2.Accelerator(
        type=hardware_pb2.AcceleratorType.ValueType(int(device.type)),
        device_id=device.device_id,
        memory_bytes=device.memory_bytes,
        unavailable=not device.available,
        tpu_chip_count=device.tpu_chip_count,
        tpu_version=hardware_pb2.TpuVersion.ValueType(int(device.tpu_version)),
        gaudi_generation=hardware_pb2.GaudiGeneration.ValueType(int(device.gaudi_generation)),
        neuron_chip_type=hardware_pb2.NeuronChipType.ValueType(int(device.neuron_chip_type)),
        neuron_core_count=device.neuron_core_count,
        memory_bandwidth_gigabytes_per_second=device.memory_bandwidth_gbps,
        name=device.name,
        sku=device.sku,
        peak_dense_teraflops_16bit=device.peak_dense_tflops_16bit,
    )
    if device.numa_node is not None:
        msg.numa_node = device.numa_node
    return msg


__all__ = [
    "ModelRef",
    "Violations",
    "accelerator",
    "accelerator_message",
    "fleet",
    "model_spec",
    "quantization",
    "string",
]
