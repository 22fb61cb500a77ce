"""Sizing one replica of a workload on n alike devices: split, memory per device, speed, SLO checks.

Everything is the existing core's: ``footprint`` for memory (per device under tensor
parallelism), the roofline (``roofline``) for decode speed and time to first token, the
spec resolver for device figures. This module only chooses the split and compares.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from accelplan_server.core.hardware.accelerators import Accelerator
from accelplan_server.core.hardware.specs import SpecResolver
from accelplan_server.core.memory.serving import DEFAULT_GPU_MEMORY_UTILIZATION, ServingShape
from accelplan_server.core.model.footprint import ModelProfile, footprint
from accelplan_server.core.model.weights import WeightFormat
from accelplan_server.core.planning.plan_speed import PLAN_OUTPUT_TOKENS
from accelplan_server.core.planning.roofline import Workload, roofline
from accelplan_server.core.quantization import Quantization as Q

GIB = 2**30
MEMORY_UTILIZATION = DEFAULT_GPU_MEMORY_UTILIZATION
"""Share of each device's memory the engine may use (vLLM's --gpu-memory-utilization default, 0.9)."""


Progress = Callable[[int, int], None]
"""Called with (items done, items in all) as a long sizing goes (shapes, skus); it may raise to stop it."""


def gib(n: float) -> str:
    """Bytes as GiB with one decimal."""
    return f"{n / GIB:.1f} GiB"


class Cause(enum.IntEnum):
    """Why an attempt misses (accelplan.v1.RejectionCause's numbers)."""

    NONE = 0
    MEMORY = 1
    PRECISION = 2
    DECODE_SPEED = 3
    TIME_TO_FIRST_TOKEN = 4
    UNSUPPORTED_DEVICE = 5


@dataclass(frozen=True)
class ServingWorkload:
    """A validated Workload: the model and the traffic it is served for, defaults filled in."""

    profile: ModelProfile
    quantization: Q | None
    """None: the widest precision the devices support that fits."""
    context_length: int
    concurrency: int
    kv_quantization: Q | None
    """None: 16-bit KV cache."""
    prompt_tokens: int
    min_decode_tokens_per_second: float | None = None
    max_time_to_first_token_seconds: float | None = None

    @property
    def kv_bits(self) -> int:
        """Bits per KV-cache value."""
        return self.kv_quantization.bits if self.kv_quantization else 16

    @property
    def has_slo(self) -> bool:
        """Whether a speed or latency target is set."""
        return self.min_decode_tokens_per_second is not None or self.max_time_to_first_token_seconds is not None


class Attempt(NamedTuple):
    """One replica size tried: a precision on n devices split tp x pp (a tuple: sizing builds thousands)."""

    quantization: Q
    device_count: int
    tensor_parallel: int
    pipeline_parallel: int
    memory_per_device_bytes: int
    device_memory_bytes: int
    usable_bytes: int
    decode_tokens_per_second: float = 0.0
    """Per sequence at the workload's concurrency; 0 when unknown or not computed."""
    time_to_first_token_seconds: float = 0.0
    cause: Cause = Cause.NONE
    miss: str = ""
    """Why it does not serve the workload (empty when it does)."""

    @property
    def ok(self) -> bool:
        """Fits and meets every SLO."""
        return self.cause is Cause.NONE


class Sizer:
    """Sizes one workload; footprints and speeds are kept for the request, so alike shapes cost little."""

    def __init__(self, workload: ServingWorkload, specs_of: SpecResolver) -> None:
        self.workload = workload
        self.specs_of = specs_of
        self._memory: dict[tuple[Q, int, int], int] = {}
        self._speed: dict[tuple[object, ...], tuple[float, float] | None] = {}
        self._attempts: dict[tuple[object, ...], Attempt | None] = {}
        arch = workload.profile.architecture
        self._heads = arch.num_attention_heads if arch else 0
        self._layers = workload.profile.layer_count

    def split(self, n: int) -> tuple[int, int] | None:
        """(tensor, pipeline) degrees for n devices; None if no split works.

        Tensor parallel is the widest power of two that divides n (and the attention heads, as vLLM
        requires); the rest are pipeline stages.
        """
        tp = 1
        while n % (tp * 2) == 0 and (not self._heads or self._heads % (tp * 2) == 0):
            tp *= 2
        pp = n // tp
        if pp > self._layers:
            return None
        return tp, pp

    def memory_per_device(self, q: Q, tp: int, pp: int) -> int:
        """Bytes one device holds: weights and KV cache split over tp x pp, activations and runtime per device."""
        key = (q, tp, pp)
        found = self._memory.get(key)
        if found is None:
            w = self.workload
            f = footprint(w.profile, WeightFormat(q), ServingShape(w.context_length, w.concurrency, w.kv_bits, tp))
            if f.architecture_known:
                found = -(-(f.weights_bytes + f.kv_cache_bytes) // pp) + f.activation_bytes + f.overhead_bytes
            else:
                found = -(-f.total_bytes // pp)
            self._memory[key] = found
        return found

    def speed(
        self,
        devices: Sequence[Accelerator],
        link_gbps: float,
        q: Q,
        tp: int,
        pp: int,
        spec_keys: tuple[tuple[object, ...], ...] | None = None,
    ) -> tuple[float, float] | None:
        """(decode tokens/s per sequence, time to first token in s) from the roofline; None if bandwidth is unknown.

        ``spec_keys``: the devices' ``spec_key``s when the caller has them.
        """
        if spec_keys is None:
            spec_keys = tuple(d.spec_key for d in devices)
        key = (spec_keys, link_gbps, q, tp, pp)
        if key in self._speed:
            return self._speed[key]
        arrangement = self.specs_of.arrangement(devices, spec_keys, q, tp, pp, link_gbps)
        result: tuple[float, float] | None = None
        if all(b > 0 for b in arrangement.stage_bandwidths_gbps):  # a stage's slowest: 0 if any device's is
            w = self.workload
            p = w.profile
            work = Workload(
                p.counts, WeightFormat(q), p.architecture, w.kv_bits, w.concurrency, w.prompt_tokens, PLAN_OUTPUT_TOKENS
            )
            perf = roofline(work, arrangement, link_gbps=link_gbps)
            result = (perf.decode_tokens_per_second_per_sequence, perf.prefill_seconds)
        if len(self._speed) < 4096:
            self._speed[key] = result
        return result

    def attempt(
        self,
        devices: Sequence[Accelerator],
        link_gbps: float,
        q: Q,
        label: str,
        *,
        need_speed: bool,
        key: tuple[tuple[object, ...], ...] | None = None,
    ) -> Attempt | None:
        """``q`` on ``devices`` (a replica); None when n devices cannot be split for this model.

        ``key``, when given, is the devices' ``spec_key``s: alike replicas on other node shapes
        (8 and 4 of one GPU) are then sized once per request.
        """
        if key is None:
            return self._attempt(devices, link_gbps, q, label, need_speed, None)
        memo_key = (key, link_gbps, q, label, need_speed)
        try:
            return self._attempts[memo_key]
        except KeyError:
            found = self._attempt(devices, link_gbps, q, label, need_speed, key)
            if len(self._attempts) < 4096:
                self._attempts[memo_key] = found
            return found

    def _attempt(
        self,
        devices: Sequence[Accelerator],
        link_gbps: float,
        q: Q,
        label: str,
        need_speed: bool,
        spec_keys: tuple[tuple[object, ...], ...] | None,
    ) -> Attempt | None:
        n = len(devices)
        split = self.split(n)
        if split is None:
            return None
        tp, pp = split
        device_memory = min(d.memory_bytes for d in devices)
        usable = int(device_memory * MEMORY_UTILIZATION)
        need = self.memory_per_device(q, tp, pp)
        base = Attempt(q, n, tp, pp, need, device_memory, usable)
        if need > usable:
            return base._replace(cause=Cause.MEMORY)  # the text, when reported: ``explained``
        w = self.workload
        if not (need_speed or w.has_slo):
            return base
        speed = self.speed(devices, link_gbps, q, tp, pp, spec_keys)
        if speed is None:
            if w.has_slo:
                return _with(base, Cause.DECODE_SPEED, f"speed unknown: no memory bandwidth for {label}")
            return base
        decode, ttft = speed
        base = Attempt(q, n, tp, pp, need, device_memory, usable, decode, ttft)
        if w.min_decode_tokens_per_second is not None and decode < w.min_decode_tokens_per_second:
            return base._replace(cause=Cause.DECODE_SPEED)
        if w.max_time_to_first_token_seconds is not None and ttft > w.max_time_to_first_token_seconds:
            return base._replace(cause=Cause.TIME_TO_FIRST_TOKEN)
        return base

    def explained(self, a: Attempt, label: str) -> Attempt:
        """``a`` with its ``miss`` spelled out (``label``: the device's name).

        Sizing leaves a miss's text empty: a search tries many sizes and reports one, and
        formatting the others' numbers was a third of a cold ranking's time.
        """
        if a.ok or a.miss:
            return a
        on = f"{a.device_count} device{'s' if a.device_count > 1 else ''}"
        q = a.quantization.display_name
        w = self.workload
        if a.cause is Cause.DECODE_SPEED and w.min_decode_tokens_per_second is not None:
            miss = (
                f"decode {a.decode_tokens_per_second:.1f} tokens/s per sequence at {q} on {on} is below the "
                f"required {w.min_decode_tokens_per_second:g}"
            )
        elif a.cause is Cause.TIME_TO_FIRST_TOKEN and w.max_time_to_first_token_seconds is not None:
            miss = (
                f"time to first token {a.time_to_first_token_seconds:.3g} s for {w.prompt_tokens}-token prompts at "
                f"{q} on {on} is above the allowed {w.max_time_to_first_token_seconds:g} s"
            )
        else:
            miss = (
                f"needs {gib(a.memory_per_device_bytes)} per device at {q} on {on}; {label} has "
                f"{gib(a.device_memory_bytes)} ({gib(a.usable_bytes)} usable at {MEMORY_UTILIZATION:g} memory "
                "utilization)"
            )
        return a._replace(miss=miss)


def _with(a: Attempt, cause: Cause, miss: str) -> Attempt:
    return a._replace(cause=cause, miss=miss)


MAX_SEARCHED_DEVICES = 64
"""Largest replica the searches try on their own (a caller may still ask for more explicitly):
each size tried costs a roofline over its devices, and a request must not buy unbounded work."""


def candidate_counts(available: int) -> list[int]:
    """Replica sizes to try on ``available`` devices, fewest first: powers of two, then all of them.

    At most MAX_SEARCHED_DEVICES.
    """
    available = min(available, MAX_SEARCHED_DEVICES)
    counts = []
    n = 1
    while n <= available:
        counts.append(n)
        n *= 2
    if available and counts[-1] != available:
        counts.append(available)
    return counts


def closest_miss(misses: Sequence[Attempt]) -> Attempt | None:
    """The failure to report: a speed or latency miss (the fastest) over a memory miss (the last tried)."""
    slo = [a for a in misses if a.cause in (Cause.DECODE_SPEED, Cause.TIME_TO_FIRST_TOKEN)]
    if slo:
        return max(slo, key=lambda a: (a.decode_tokens_per_second, -a.time_to_first_token_seconds))
    return misses[-1] if misses else None
