"""A pod's workload from its ``accelplan.dev/*`` annotations and its device count from its container limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from accelplan.v1 import models_pb2, scheduling_pb2
from accelplan_server.core import quantization
from accelplan_server.core.errors import InvalidArgument

PREFIX = "accelplan.dev/"
MODEL = PREFIX + "model"
QUANTIZATION = PREFIX + "quantization"
KV_CACHE_QUANTIZATION = PREFIX + "kv-cache-quantization"
CONTEXT_LENGTH = PREFIX + "context-length"
CONCURRENCY = PREFIX + "concurrency"
POLICY = PREFIX + "policy"
WORKLOAD = PREFIX + "workload"
KNOWN = (MODEL, QUANTIZATION, KV_CACHE_QUANTIZATION, CONTEXT_LENGTH, CONCURRENCY, POLICY, WORKLOAD)

# Extended resources a pod requests accelerators with (device plugins' resource names).
DEVICE_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "google.com/tpu", "habana.ai/gaudi", "aws.amazon.com/neuron")

POLICIES = {
    "best-fit": scheduling_pb2.PLACEMENT_POLICY_BEST_FIT,
    "most-headroom": scheduling_pb2.PLACEMENT_POLICY_MOST_HEADROOM,
    "fastest": scheduling_pb2.PLACEMENT_POLICY_FASTEST,
    "cheapest": scheduling_pb2.PLACEMENT_POLICY_CHEAPEST,
}

# Annotation values are user text: bound what one pod can make the extender parse.
MAX_VALUE_LENGTH = 64 * 1024
MAX_COUNT = 1 << 31

_PARAMETER_COUNT = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kmbt])", re.IGNORECASE)
_SCALE = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


class AnnotationError(ValueError):
    """A pod's accelplan annotations or device limits cannot be read; the message names the annotation."""


@dataclass(frozen=True)
class PodWorkload:
    """What a pod asks accelplan to check: the workload, its devices and how to order nodes."""

    workload: scheduling_pb2.Workload
    devices: int  # devices per replica from the container limits; 0 = the fewest that fit
    resource: str  # the extended resource the devices were counted in; "" when none
    policy: scheduling_pb2.PlacementPolicy.ValueType


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(key: str, text: str) -> int:
    value = text.strip()
    if not value.isdigit() or int(value) >= MAX_COUNT:
        raise AnnotationError(f"{key}: {text!r} is not a whole number below {MAX_COUNT}")
    return int(value)


def _model(text: str) -> models_pb2.ModelSpec:
    """``llama-3.1-70b`` (a catalogue id) or ``70B`` (a bare parameter count)."""
    value = text.strip()
    if not value:
        raise AnnotationError(f"{MODEL}: empty; use a catalogue model id (see `accelplan models`) or a count like 70B")
    m = _PARAMETER_COUNT.fullmatch(value)
    if m:
        count = int(float(m.group(1)) * _SCALE[m.group(2).lower()])
        return models_pb2.ModelSpec(parameter_count=count)
    return models_pb2.ModelSpec(model_id=value)


def _level(key: str, text: str) -> quantization.Quantization:
    try:
        return quantization.from_name(text, key)
    except InvalidArgument as e:
        raise AnnotationError(str(e)) from None


def _workload(annotations: Mapping[str, Any]) -> scheduling_pb2.Workload:
    workload = scheduling_pb2.Workload()
    if WORKLOAD in annotations:
        try:
            json_format.Parse(annotations[WORKLOAD], workload)
        except json_format.ParseError as e:
            raise AnnotationError(f"{WORKLOAD}: not an accelplan.v1.Workload in proto3 JSON: {e}") from None
    # The single-value annotations override the same fields of accelplan.dev/workload.
    if MODEL in annotations:
        workload.model.CopyFrom(_model(annotations[MODEL]))
    if QUANTIZATION in annotations:
        workload.quantization = int(_level(QUANTIZATION, annotations[QUANTIZATION]))  # type: ignore[assignment]
    if KV_CACHE_QUANTIZATION in annotations:
        level = _level(KV_CACHE_QUANTIZATION, annotations[KV_CACHE_QUANTIZATION])
        workload.kv_cache_quantization = int(level)  # type: ignore[assignment]
    if CONTEXT_LENGTH in annotations:
        workload.context_length = _count(CONTEXT_LENGTH, annotations[CONTEXT_LENGTH])
    if CONCURRENCY in annotations:
        workload.concurrency = _count(CONCURRENCY, annotations[CONCURRENCY])
    if not workload.HasField("model"):
        raise AnnotationError(f"{MODEL} is required (or a model in {WORKLOAD})")
    return workload


def _devices(spec: Mapping[str, Any]) -> tuple[int, str]:
    """Accelerators the pod's containers request: the sum over containers (init containers run one at a time)."""
    totals: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for group, into in (("containers", totals), ("initContainers", init_peak)):
        for container in spec.get(group) or ():
            resources = _mapping(_mapping(container).get("resources"))
            limits = _mapping(resources.get("limits")) or _mapping(resources.get("requests"))
            for name in DEVICE_RESOURCES:
                if name in limits:
                    n = _count(f"{group} limit {name}", str(limits[name]))
                    into[name] = into.get(name, 0) + n if group == "containers" else max(into.get(name, 0), n)
    for name, n in init_peak.items():
        totals[name] = max(totals.get(name, 0), n)
    used = {k: v for k, v in totals.items() if v}
    if len(used) > 1:
        raise AnnotationError(f"the pod requests more than one kind of accelerator ({', '.join(sorted(used))})")
    if not used:
        return 0, ""
    name, n = next(iter(used.items()))
    return n, name


def pod_workload(pod: Mapping[str, Any]) -> PodWorkload | None:
    """The pod's workload, or None when it has no accelplan annotation; AnnotationError when one is malformed."""
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    ours = {k: v for k, v in annotations.items() if isinstance(k, str) and k.startswith(PREFIX)}
    if not ours:
        return None
    for key, value in ours.items():
        if key not in KNOWN:
            raise AnnotationError(f"{key}: unknown accelplan annotation; known: {', '.join(KNOWN)}")
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise AnnotationError(f"{key}: must be a string of at most {MAX_VALUE_LENGTH} characters")
    workload = _workload(ours)
    policy: scheduling_pb2.PlacementPolicy.ValueType = scheduling_pb2.PLACEMENT_POLICY_UNSPECIFIED
    if POLICY in ours:
        name = ours[POLICY].strip().lower()
        if name not in POLICIES:
            raise AnnotationError(f"{POLICY}: {ours[POLICY]!r} is not one of {', '.join(POLICIES)}")
        policy = POLICIES[name]
    devices, resource = _devices(_mapping(pod.get("spec")))
    return PodWorkload(workload, devices, resource, policy)
