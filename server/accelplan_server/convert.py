"""Request validation and conversion between accelplan.v1 messages and core values.

Validation collects every bad field of a request (with its path, e.g.
``fleet.accelerators[2].memory_bytes``) before anything is computed, and
raises one InvalidArgument naming them all.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2, quantization_pb2, training_pb2
from accelplan_server import limits
from accelplan_server.core import hardware as hw
from accelplan_server.core.catalog import Catalog, ModelEntry
from accelplan_server.core.errors import FieldViolation, InvalidArgument
from accelplan_server.core.quantization import Quantization


class Violations:
    """Collects field violations for one request."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        """Record one bad field."""
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        """Raise InvalidArgument if anything was recorded."""
        if self.items:
            raise InvalidArgument(self.items)


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


def string(value: str, field: str, bad: Violations) -> str:
    """A string within the length cap."""
    if len(value) > limits.MAX_STRING_LENGTH:
        bad.add(field, f"longer than {limits.MAX_STRING_LENGTH} characters")
    return value


@dataclass(frozen=True)
class ModelRef:
    """A validated ModelSpec: a raw count or a catalogue id (not yet looked up)."""

    parameter_count: int = 0
    model_id: str = ""
    field: str = "model"

    def resolve(self, catalog: Catalog) -> tuple[int, ModelEntry | None]:
        """(parameter count, catalogue entry or None); NotFound for an unknown id."""
        if self.model_id:
            entry = catalog.model(self.model_id, f"{self.field}.model_id")
            return entry.parameter_count, entry
        return self.parameter_count, None


def model_spec(msg: models_pb2.ModelSpec, field: str, bad: Violations, *, present: bool) -> ModelRef:
    """Validate a ModelSpec; ``present`` is whether the request set the field at all."""
    which = msg.WhichOneof("source") if present else None
    if which is None:
        bad.add(field, "set parameter_count or model_id")
        return ModelRef(field=field)
    if which == "parameter_count":
        count = msg.parameter_count
        if count == 0:
            bad.add(f"{field}.parameter_count", "must be greater than 0")
        elif count > limits.MAX_PARAMETER_COUNT:
            bad.add(f"{field}.parameter_count", f"must be at most {limits.MAX_PARAMETER_COUNT:.0e}")
        return ModelRef(parameter_count=count, field=field)
    model_id = string(msg.model_id, f"{field}.model_id", bad)
    if not model_id.strip():
        bad.add(f"{field}.model_id", "must not be empty")
    return ModelRef(model_id=model_id, field=field)


def _finite_non_negative(value: float, cap: float, field: str, bad: Violations) -> float:
    if math.isnan(value) or value < 0 or value > cap:
        bad.add(field, f"must be a number from 0 to {cap:g}")
        return 0.0
    return value


def accelerator(msg: hardware_pb2.Accelerator, field: str, bad: Violations) -> hw.Accelerator | None:
    """Validate one Accelerator message."""
    before = len(bad.items)
    kind = enum_value(hw.AcceleratorType, msg.type, f"{field}.type", bad, required=True)
    memory = msg.memory_bytes or hw.default_memory_bytes(
        hw.AcceleratorType(kind) if kind else None, msg.tpu_version, msg.gaudi_generation, msg.tpu_chip_count
    )
    if memory == 0:
        bad.add(
            f"{field}.memory_bytes",
            "must be greater than 0 (only a TPU with tpu_version or a Gaudi with gaudi_generation may leave it 0)",
        )
    elif msg.memory_bytes > limits.MAX_MEMORY_BYTES:
        bad.add(f"{field}.memory_bytes", f"must be at most {limits.MAX_MEMORY_BYTES} (1 PiB)")
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
    if len(bad.items) > before or kind is None:
        return None
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
    )


def fleet(msg: hardware_pb2.Fleet, field: str, bad: Violations, *, required: bool) -> hw.Fleet:
    """Validate a Fleet; ``required`` demands at least one accelerator."""
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
    devices = [accelerator(a, f"{field}.accelerators[{i}]", bad) for i, a in enumerate(msg.accelerators)]
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
    return hw.Fleet(tuple(d for d in devices if d is not None), tuple(links))


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
    )
    if device.numa_node is not None:
        msg.numa_node = device.numa_node
    return msg


def model_spec_present(msg: object, name: str = "model") -> bool:
    """Whether a request set its ModelSpec field."""
    return bool(msg.HasField(name))  # type: ignore[attr-defined]


__all__ = [
    "ModelRef",
    "Violations",
    "accelerator",
    "accelerator_message",
    "fleet",
    "model_spec",
    "model_spec_present",
    "quantization",
    "string",
]
