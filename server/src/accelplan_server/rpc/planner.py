"""The accelplan.v1.PlannerService servicer: validate, convert, call the core, convert back."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from functools import partial

import grpc

from accelplan.v1 import (
    cost_pb2,
    hardware_pb2,
    models_pb2,
    planner_service_pb2_grpc,
    planning_pb2,
    quantization_pb2,
    training_pb2,
)
from accelplan_server.core import quantization as quant
from accelplan_server.core.catalog import Catalog
from accelplan_server.core.cost import find_compatible_models, recommend_instances, skus_lacking
from accelplan_server.core.errors import invalid, shown
from accelplan_server.core.hardware import accelerators as hw
from accelplan_server.core.hardware.bandwidth import BandwidthTable
from accelplan_server.core.hardware.precision import check_precision
from accelplan_server.core.hardware.specs import SpecResolver
from accelplan_server.core.memory.capacity import capacity_for
from accelplan_server.core.memory.finetune import (
    ALL_LINEAR,
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_TARGETS,
    FinetuneSetup,
    Optimizer,
    Recomputation,
    estimate_finetune_memory,
)
from accelplan_server.core.memory.fit import context_note, fit_of, no_fit_note
from accelplan_server.core.memory.hwaccel_training import (
    DEFAULT_QLORA_BITS,
    TrainingMethod,
    TrainingTarget,
    estimate_training_memory,
)
from accelplan_server.core.memory.serving import DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_BATCHED_TOKENS, ServingShape
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.model.footprint import Footprint, ModelProfile, footprint
from accelplan_server.core.model.weights import DEFAULT_GROUP_SIZE, WeightFormat
from accelplan_server.core.planning.engines import Engine
from accelplan_server.core.planning.plan_speed import roofline_speed
from accelplan_server.core.planning.roofline import Efficiency, Workload, estimate_performance
from accelplan_server.core.planning.sharding import SpeedModel, device_link_bandwidth_gbps, plan_sharding
from accelplan_server.core.planning.suggest import suggest_quantization
from accelplan_server.rpc import convert, deadlines, limits, messages
from accelplan_server.rpc.answers import remembered
from accelplan_server.rpc.convert import Violations
from accelplan_server.rpc.paging import page
from accelplan_server.rpc.status import translate_errors
from accelplan_server.rpc.uint64 import Fit

Ctx = grpc.ServicerContext
MAX_LORA_TARGETS = len(ALL_LINEAR) + 1
"""Each linear module once, and all-linear."""
DEFAULT_PROMPT_TOKENS = 512
DEFAULT_OUTPUT_TOKENS = 128


def _bounded(value: int, default: int, cap: int, field: str, bad: Violations) -> int:
    """``value`` (0 meaning ``default``) if it is at most ``cap``, else a violation."""
    if value > cap:
        bad.add(field, f"must be at most {cap} (0 means {default})")
        return default
    return value or default


def _group_size(value: int, bad: Violations) -> int:
    """quantization_group_size, 0 meaning the default."""
    return _bounded(value, DEFAULT_GROUP_SIZE, limits.MAX_GROUP_SIZE, "quantization_group_size", bad)


def _kv_bits(value: int, field: str, bad: Violations) -> int:
    level = convert.enum_value(quant.Quantization, value, field, bad, required=False)
    return quant.Quantization(level).bits if level else 16


def _efficiency(request: planning_pb2.EstimatePerformanceRequest, bad: Violations) -> Efficiency:
    values = {}
    for name in ("decode_mbu", "decode_mfu", "prefill_mfu"):
        if request.HasField(name):
            v = getattr(request, name)
            if not 0 < v <= 1:
                bad.add(name, "must be in (0, 1]")
            else:
                values[name] = v
    return Efficiency(**values)


_ARCHITECTURE_ONLY_TRAINING_FIELDS = (
    "micro_batch_size",
    "sequence_length",
    "optimizer",
    "zero_stage",
    "fsdp",
    "data_parallel_size",
    "activation_recomputation",
    "tensor_parallel_size",
    "sequence_parallel",
    "lora_rank",
    "lora_target_modules",
    "teacher",
    "pure_bf16",
    "optimizer_in_backward",
    "offload_optimizer",
    "offload_parameters",
)
"""EstimateTrainingMemoryRequest fields that ai-hwaccel's parameter-count rule cannot express."""


def _is_set(request: training_pb2.EstimateTrainingMemoryRequest, name: str) -> bool:
    """Whether a proto3 field differs from its default (a message field: whether it is present)."""
    if name == "teacher":
        return request.HasField("teacher")
    return bool(getattr(request, name))


class PlannerServicer(planner_service_pb2_grpc.PlannerServiceServicer):
    """Implements accelplan.v1.PlannerService over a loaded catalogue."""

    def __init__(self, catalog: Catalog, *, remember_answers: bool = True) -> None:
        self.catalog = catalog
        self.remember_answers = remember_answers
        """Answer repeated requests from answers.remembered's tables (off: always compute, for benchmarks)."""
        self.bandwidths = BandwidthTable.from_catalog(catalog)
        self.specs_of = SpecResolver(catalog, self.bandwidths)
        self.skus = {a.sku.lower(): a for a in catalog.accelerators}
        # Everything derivable from the catalogue is computed once, here.
        self.profiles: dict[str, ModelProfile] = {}
        for m in catalog.models:
            if m.architecture:
                self.profiles[m.id] = ModelProfile.from_architecture(Architecture.from_config(m.architecture), m.id)
            else:
                self.profiles[m.id] = ModelProfile(m.parameter_count, m.active_parameter_count, None, m.id)
        self._model_infos = {m.id: messages.model_info(m) for m in catalog.models}
        self._levels = quantization_pb2.ListQuantizationLevelsResponse(
            levels=[messages.level_info(q) for q in quant.Quantization]
        )
        self._level_infos = {q: messages.level_info(q) for q in quant.Quantization}
        self._accelerator_models = [messages.accelerator_model_message(a) for a in catalog.accelerators]

    # ----- shared steps -----

    def _model(self, request: object, bad: Violations) -> convert.ModelRef:
        return convert.model_spec(request.model, "model", bad, present=request.HasField("model"))  # type: ignore[attr-defined]

    def _fleet(self, msg: hardware_pb2.Fleet, bad: Violations, context: Ctx | None, *, required: bool) -> hw.Fleet:
        fleet = convert.fleet(msg, "fleet", bad, required=required, skus=self.skus)
        if context is not None and len(msg.accelerators) > deadlines.CHECKED_FLEET_SIZE:
            # A large fleet never seen before takes milliseconds to validate: stop here if the caller has gone.
            deadlines.check(context)
        return fleet

    def _profile(self, ref: convert.ModelRef) -> ModelProfile:
        return ref.resolve(self.catalog, self.profiles)

    def _speed(self, profile: ModelProfile, level: quant.Quantization, fleet: hw.Fleet) -> SpeedModel:
        return roofline_speed(profile, WeightFormat(level), fleet, self.specs_of)

    # ----- quantization -----

    @translate_errors
    def ListQuantizationLevels(
        self, request: quantization_pb2.ListQuantizationLevelsRequest, context: Ctx
    ) -> quantization_pb2.ListQuantizationLevelsResponse:
        """All levels, in enum order."""
        return self._levels

    @translate_errors
    def ResolveQuantizationLevel(
        self, request: quantization_pb2.ResolveQuantizationLevelRequest, context: Ctx
    ) -> quantization_pb2.QuantizationLevelInfo:
        """A level by value, bit width or name."""
        which = request.WhichOneof("selector")
        if which == "bits":
            return self._level_infos[quant.from_bits(request.bits)]
        if which == "name":
            return self._level_infos[quant.from_name(request.name)]
        bad = Violations()
        if which is None:
            bad.add("selector", "set one of level, bits or name")
        level = convert.quantization(request.level, "level", bad) if which == "level" else None
        bad.raise_if_any()
        assert level is not None
        return self._level_infos[level]

    # ----- memory -----

    @translate_errors
    @remembered
    def EstimateMemory(self, request: planning_pb2.EstimateMemoryRequest, context: Ctx) -> planning_pb2.MemoryEstimate:
        """Inference memory for a model at a precision and a traffic shape."""
        bad = Violations()
        ref = self._model(request, bad)
        level = convert.quantization(request.quantization, "quantization", bad)
        shape = ServingShape(
            context_length=_bounded(
                request.context_length, DEFAULT_CONTEXT_LENGTH, limits.MAX_CONTEXT_LENGTH, "context_length", bad
            ),
            batch_size=_bounded(request.batch_size, 1, limits.MAX_BATCH_SIZE, "batch_size", bad),
            kv_bits=_kv_bits(request.kv_cache_quantization, "kv_cache_quantization", bad),
            tensor_parallel=_bounded(
                request.tensor_parallel_size, 1, limits.MAX_PARALLEL_DEGREE, "tensor_parallel_size", bad
            ),
            max_batched_tokens=_bounded(
                request.max_batched_tokens,
                DEFAULT_MAX_BATCHED_TOKENS,
                limits.MAX_CONTEXT_LENGTH,
                "max_batched_tokens",
                bad,
            ),
        )
        group = _group_size(request.quantization_group_size, bad)
        bad.raise_if_any()
        assert level is not None
        fmt = WeightFormat(level, group, request.quantization_symmetric)
        profile = self._profile(ref)
        need = footprint(profile, fmt, shape)
        note = context_note(profile.architecture, shape.context_length, "context_length")
        if note:
            need = need._replace(assumptions=(*need.assumptions, note))
        fit = Fit(request, "model", "context_length", "batch_size", "max_batched_tokens")
        return messages.memory_message(need, fit)

    @translate_errors
    @remembered
    def EstimateCapacity(
        self, request: planning_pb2.EstimateCapacityRequest, context: Ctx
    ) -> planning_pb2.EstimateCapacityResponse:
        """The longest context and the most sequences that fit."""
        bad = Violations()
        ref = self._model(request, bad)
        level = convert.quantization(request.quantization, "quantization", bad)
        fleet = self._fleet(request.fleet, bad, context, required=True)
        util = request.gpu_memory_utilization or 0.9
        if not 0 < util <= 1:
            bad.add("gpu_memory_utilization", "must be in (0, 1] (0 means 0.9)")
        context_length = _bounded(
            request.context_length, DEFAULT_CONTEXT_LENGTH, limits.MAX_CONTEXT_LENGTH, "context_length", bad
        )
        batch = _bounded(request.batch_size, 1, limits.MAX_BATCH_SIZE, "batch_size", bad)
        kv_bits = _kv_bits(request.kv_cache_quantization, "kv_cache_quantization", bad)
        group = _group_size(request.quantization_group_size, bad)
        max_tokens = _bounded(
            request.max_batched_tokens, DEFAULT_MAX_BATCHED_TOKENS, limits.MAX_CONTEXT_LENGTH, "max_batched_tokens", bad
        )
        tp_requested = _bounded(
            request.tensor_parallel_size, 0, limits.MAX_PARALLEL_DEGREE, "tensor_parallel_size", bad
        )
        bad.raise_if_any()
        assert level is not None
        profile = self._profile(ref)
        if profile.architecture is None:
            raise invalid("model", "capacity needs the architecture: use model_id, architecture or hf_config_json")
        available = [a for _, a in fleet.available()]
        tp = tp_requested or len(available)
        if not available or tp > len(available):
            raise invalid("tensor_parallel_size", f"needs {tp} available devices; the fleet has {len(available)}")
        precision_notes = check_precision(fleet.available()[:tp], level)
        shape = ServingShape(context_length, batch, kv_bits, tp, max_tokens)
        result = capacity_for(profile.architecture, WeightFormat(level, group), shape, available[:tp], util)
        note = context_note(profile.architecture, context_length, "context_length")
        notes = [*result.assumptions, *precision_notes, *([note] if note else [])]
        fit = Fit(request, "model", "context_length", "batch_size", "max_batched_tokens", "fleet.accelerators")
        return planning_pb2.EstimateCapacityResponse(
            max_context_length=fit("max_context_length", result.capacity.max_context_length),
            max_concurrent_sequences=fit("max_concurrent_sequences", result.capacity.max_concurrent_sequences),
            kv_cache_tokens=fit("kv_cache_tokens", result.capacity.kv_cache_tokens),
            kv_cache_budget_bytes=fit("kv_cache_budget_bytes", result.capacity.kv_budget_bytes),
            usable_memory_bytes=fit("usable_memory_bytes", result.capacity.usable_bytes),
            memory=messages.memory_message(
                Footprint(
                    profile,
                    WeightFormat(level, group),
                    shape,
                    result.capacity.memory.weights_bytes,
                    result.capacity.memory.kv_cache_bytes,
                    result.capacity.memory.kv_cache_bytes_per_token,
                    result.capacity.memory.activation_bytes,
                    result.capacity.memory.overhead_bytes,
                    result.capacity.memory.assumptions,
                ),
                fit,
            ),
            tensor_parallel_size=tp,
            assumptions=notes,
        )

    # ----- planning -----

    @translate_errors
    @remembered
    def SuggestQuantization(
        self, request: planning_pb2.SuggestQuantizationRequest, context: Ctx
    ) -> planning_pb2.SuggestQuantizationResponse:
        """The widest precision that fits the fleet."""
        bad = Violations()
        ref = self._model(request, bad)
        fleet = self._fleet(request.fleet, bad, context, required=False)
        bad.raise_if_any()
        profile = self._profile(ref)
        s = suggest_quantization(
            lambda q: footprint(profile, WeightFormat(q)),
            fleet,
            partial(self._speed, profile),
            consider_sharding=request.consider_sharding,
        )
        fit = Fit(request, "model")
        msg = planning_pb2.SuggestQuantizationResponse(
            quantization=convert.level_value(s.quantization),
            reason=s.reason,
            family=convert.family_value(s.family),
            required_memory_bytes=fit("required_memory_bytes", s.required_memory_bytes),
            available_memory_bytes=fit("available_memory_bytes", s.available_memory_bytes),
            fits=s.fits,
        )
        if s.plan is not None:
            msg.assumed_plan.CopyFrom(messages.plan_message(s.plan, fleet, request.fleet, fit))
        return msg

    @translate_errors
    @remembered
    def PlanSharding(self, request: planning_pb2.PlanShardingRequest, context: Ctx) -> planning_pb2.ShardingPlan:
        """Where each part of the model runs, and how fast."""
        bad = Violations()
        ref = self._model(request, bad)
        level = convert.quantization(request.quantization, "quantization", bad)
        fleet = self._fleet(request.fleet, bad, context, required=True)
        bad.raise_if_any()
        assert level is not None
        if fleet.accelerators and not fleet.available():
            raise invalid("fleet.accelerators", "every accelerator is marked unavailable; nothing to plan on")
        profile = self._profile(ref)
        fmt = WeightFormat(level)
        plan = plan_sharding(footprint(profile, fmt), fleet, roofline_speed(profile, fmt, fleet, self.specs_of))
        lineup = plan.lineup  # kept with the fleet: a 4,096-device fleet is checked once per level
        notes = lineup.memo(
            ("precision", level),
            lambda: check_precision(zip(lineup.indices, lineup.devices, strict=True), level),
        )
        if notes:
            plan = replace(plan, assumptions=(*plan.assumptions, *notes))
        return messages.plan_message(plan, fleet, request.fleet, Fit(request, "model"))

    @translate_errors
    @remembered
    def EstimatePerformance(
        self, request: planning_pb2.EstimatePerformanceRequest, context: Ctx
    ) -> planning_pb2.EstimatePerformanceResponse:
        """Time to first token and decode speed from the roofline model."""
        bad = Violations()
        ref = self._model(request, bad)
        level = convert.quantization(request.quantization, "quantization", bad)
        fleet = self._fleet(request.fleet, bad, context, required=True)
        tp = _bounded(request.tensor_parallel_size, 1, limits.MAX_PARALLEL_DEGREE, "tensor_parallel_size", bad)
        pp = _bounded(request.pipeline_parallel_size, 1, limits.MAX_PARALLEL_DEGREE, "pipeline_parallel_size", bad)
        batch = _bounded(request.batch_size, 1, limits.MAX_BATCH_SIZE, "batch_size", bad)
        prompt = _bounded(request.prompt_tokens, DEFAULT_PROMPT_TOKENS, limits.MAX_CONTEXT_LENGTH, "prompt_tokens", bad)
        output = _bounded(request.output_tokens, DEFAULT_OUTPUT_TOKENS, limits.MAX_CONTEXT_LENGTH, "output_tokens", bad)
        kv_bits = _kv_bits(request.kv_cache_quantization, "kv_cache_quantization", bad)
        group = _group_size(request.quantization_group_size, bad)
        efficiency = _efficiency(request, bad)
        engine = convert.engine(request.engine, "engine", bad)
        bad.raise_if_any()
        assert level is not None
        available = fleet.available()
        if tp * pp > len(available):
            raise invalid(
                "fleet.accelerators",
                f"tensor_parallel_size x pipeline_parallel_size = {tp * pp} devices needed; {len(available)} available",
            )
        used = available[: tp * pp]
        specs = [self.specs_of(d) for _, d in used]
        unknown = [(i, d) for (i, d), sp in zip(used, specs, strict=True) if sp.bandwidth_gbps <= 0]
        if unknown:
            i, d = unknown[0]
            raise invalid(
                f"fleet.accelerators[{i}].memory_bandwidth_gigabytes_per_second",
                f"unknown for {d.type.name} without a sku; set it or sku",
            )
        precision_notes = check_precision(used, level)
        profile = self._profile(ref)
        fmt = WeightFormat(level, group, request.quantization_symmetric)
        need = footprint(profile, fmt, ServingShape(prompt + output, batch, kv_bits, tp, DEFAULT_MAX_BATCHED_TOKENS))
        fit = fit_of(need, pp, [d.memory_bytes for _, d in used])
        notes = [*precision_notes]
        if not fit.fits:
            notes.append(no_fit_note(fit, f"{batch} sequence(s) of {prompt} + {output} tokens"))
        if len(available) > tp * pp:
            notes.append(
                f"Used {tp * pp} of the fleet's {len(available)} available devices (tensor_parallel_size "
                f"{tp} x pipeline_parallel_size {pp}); set them to use more."
            )
        note = context_note(profile.architecture, prompt + output, "prompt_tokens + output_tokens")
        if note:
            notes.append(note)
        work = Workload(profile.counts, fmt, profile.architecture, kv_bits, batch, prompt, output, engine=engine)
        perf = estimate_performance(
            work,
            specs,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            link_gbps=device_link_bandwidth_gbps(fleet),
            efficiency=efficiency,
        )
        checked = Fit(request, "model", "batch_size", "prompt_tokens", "output_tokens")
        return planning_pb2.EstimatePerformanceResponse(
            prefill_seconds=perf.prefill_seconds,
            decode_seconds_per_token=perf.decode_seconds_per_token,
            decode_tokens_per_second_per_sequence=perf.decode_tokens_per_second_per_sequence,
            decode_tokens_per_second_total=perf.decode_tokens_per_second_total,
            bound=planning_pb2.PerformanceBound.ValueType(int(perf.bound)),
            memory_seconds_per_token=perf.memory_seconds,
            compute_seconds_per_token=perf.compute_seconds,
            communication_seconds_per_token=perf.communication_seconds,
            end_to_end_seconds=perf.prefill_seconds + output * perf.decode_seconds_per_token,
            bytes_read_per_step=checked("bytes_read_per_step", perf.bytes_read_per_step),
            decode_mbu=perf.decode_mbu,
            decode_mfu=efficiency.decode_mfu,
            prefill_mfu=perf.prefill_mfu,
            assumptions=[*perf.assumptions, *notes],
            engine=planning_pb2.Engine.ValueType(int(engine or Engine.VLLM)),
            fits_in_memory=fit.fits,
            memory_per_device_bytes=fit.memory_per_device_bytes,
            device_memory_bytes=fit.device_memory_bytes,
            devices_used=tp * pp,
        )

    # ----- training -----

    @translate_errors
    @remembered
    def EstimateTrainingMemory(
        self, request: training_pb2.EstimateTrainingMemoryRequest, context: Ctx
    ) -> training_pb2.EstimateTrainingMemoryResponse:
        """Fine-tuning memory by component."""
        bad = Violations()
        ref = self._model(request, bad)
        method = convert.enum_value(TrainingMethod, request.method, "method", bad, required=True)
        target = convert.enum_value(TrainingTarget, request.target, "target", bad, required=False)
        bits = request.qlora_bits or DEFAULT_QLORA_BITS
        if request.qlora_bits and request.method != training_pb2.TRAINING_METHOD_QLORA:
            bad.add("qlora_bits", "only applies to TRAINING_METHOD_QLORA")
        elif not 1 <= bits <= 16:
            bad.add("qlora_bits", "must be from 1 to 16 (0 means 4)")
        setup = self._finetune_setup(request, bits, bad)
        teacher_ref = (
            convert.model_spec(request.teacher, "teacher", bad, present=True) if request.HasField("teacher") else None
        )
        bad.raise_if_any()
        assert method is not None
        profile = self._profile(ref)
        teacher = self._profile(teacher_ref) if teacher_ref else None
        if profile.architecture is None:
            ignored = [name for name in _ARCHITECTURE_ONLY_TRAINING_FIELDS if _is_set(request, name)]
            if ignored:
                bad = Violations()
                for name in ignored:
                    bad.add(
                        name,
                        "needs the model's architecture (model_id of a catalogue transformer, architecture or "
                        "hf_config_json); a bare parameter_count uses ai-hwaccel's fixed multipliers for one "
                        "unsharded device, which cannot express it",
                    )
                bad.raise_if_any()
        fit = Fit(request, "model", "teacher", "sequence_length", "micro_batch_size", "lora_rank")
        if profile.architecture is not None:
            f = estimate_finetune_memory(
                profile.architecture,
                replace(setup, method=TrainingMethod(method)),
                teacher.architecture if teacher else None,
            )
            return training_pb2.EstimateTrainingMemoryResponse(
                model_bytes=fit("model_bytes", f.weights_bytes + f.frozen_models_bytes),
                optimizer_bytes=fit("optimizer_bytes", f.optimizer_state_bytes + f.gradient_bytes),
                activation_bytes=fit("activation_bytes", f.activation_bytes),
                total_bytes=fit("total_bytes", f.total_bytes),
                method=convert.method_value(method),
                target=convert.target_value(target or TrainingTarget.GPU),
                assumptions=f.assumptions,
                trainable_parameter_count=fit("trainable_parameter_count", f.trainable_parameters),
                gradient_bytes=fit("gradient_bytes", f.gradient_bytes),
                frozen_model_bytes=fit("frozen_model_bytes", f.frozen_models_bytes),
                architecture_known=True,
                host_memory_bytes=f.host_bytes,
            )
        e = estimate_training_memory(
            profile.parameter_count, TrainingMethod(method), TrainingTarget(target or TrainingTarget.GPU), bits
        )
        return training_pb2.EstimateTrainingMemoryResponse(
            model_bytes=fit("model_bytes", e.model_bytes),
            optimizer_bytes=fit("optimizer_bytes", e.optimizer_bytes),
            activation_bytes=fit("activation_bytes", e.activation_bytes),
            total_bytes=fit("total_bytes", e.total_bytes),
            method=convert.method_value(e.method),
            target=convert.target_value(e.target),
            assumptions=e.assumptions,
        )

    @staticmethod
    def _finetune_setup(
        request: training_pb2.EstimateTrainingMemoryRequest, qlora_bits: int, bad: Violations
    ) -> FinetuneSetup:
        optimizer = convert.enum_value(Optimizer, request.optimizer, "optimizer", bad, required=False)
        recompute = convert.enum_value(
            Recomputation, request.activation_recomputation, "activation_recomputation", bad, required=False
        )
        if request.zero_stage > 3:
            bad.add("zero_stage", "must be 0, 1, 2 or 3")
        if request.fsdp and request.zero_stage not in (0, 3):
            bad.add("fsdp", "FSDP full sharding is ZeRO stage 3; leave zero_stage 0 or set it to 3")
        if request.offload_parameters and not (request.fsdp or request.zero_stage == 3):
            bad.add("offload_parameters", "parameters are offloaded by ZeRO-3 / FSDP only; set zero_stage 3 or fsdp")
        if request.optimizer_in_backward and request.zero_stage in (1, 2):
            bad.add(
                "optimizer_in_backward",
                "ZeRO-1/2 step after the gradients are reduced; use zero_stage 0 or 3 (or fsdp)",
            )
        targets = tuple(t.strip().lower() for t in request.lora_target_modules)
        repeated = [t for t, n in Counter(targets).items() if n > 1]
        if len(targets) > MAX_LORA_TARGETS:
            bad.add("lora_target_modules", f"has {len(targets)} entries; at most {MAX_LORA_TARGETS}")
        elif repeated:
            bad.add("lora_target_modules", f"lists {shown(repeated[0])} more than once")
        elif "all-linear" in targets:
            targets = ALL_LINEAR
        else:
            unknown = [t for t in targets if t not in ALL_LINEAR]
            if unknown:
                known = ", ".join(ALL_LINEAR)
                bad.add("lora_target_modules", f"unknown {shown(unknown[0])}; use {known} or all-linear")
        return FinetuneSetup(
            method=TrainingMethod.FULL_FINE_TUNE,
            micro_batch_size=_bounded(request.micro_batch_size, 1, limits.MAX_BATCH_SIZE, "micro_batch_size", bad),
            sequence_length=_bounded(
                request.sequence_length,
                FinetuneSetup.sequence_length,
                limits.MAX_CONTEXT_LENGTH,
                "sequence_length",
                bad,
            ),
            optimizer=Optimizer(optimizer or Optimizer.ADAMW),
            zero_stage=3 if request.fsdp else min(request.zero_stage, 3),
            data_parallel_size=_bounded(
                request.data_parallel_size, 1, limits.MAX_PARALLEL_DEGREE * 16, "data_parallel_size", bad
            ),
            recomputation=Recomputation(recompute or Recomputation.NONE),
            tensor_parallel_size=_bounded(
                request.tensor_parallel_size, 1, limits.MAX_PARALLEL_DEGREE, "tensor_parallel_size", bad
            ),
            sequence_parallel=request.sequence_parallel,
            lora_rank=_bounded(request.lora_rank, DEFAULT_LORA_RANK, 65536, "lora_rank", bad),
            lora_targets=targets or DEFAULT_LORA_TARGETS,
            qlora_bits=qlora_bits,
            pure_bf16=request.pure_bf16,
            optimizer_in_backward=request.optimizer_in_backward,
            offload_optimizer=request.offload_optimizer,
            offload_parameters=request.offload_parameters,
        )

    # ----- cost and catalogues -----

    @translate_errors
    @remembered
    def RecommendInstances(
        self, request: cost_pb2.RecommendInstancesRequest, context: Ctx
    ) -> cost_pb2.RecommendInstancesResponse:
        """Instances that hold the model, cheapest first."""
        bad = Violations()
        ref = self._model(request, bad)
        level = convert.quantization(request.quantization, "quantization", bad)
        provider = convert.string(request.provider, "provider", bad).strip().lower()
        if provider and len(provider) <= limits.MAX_STRING_LENGTH and provider not in self.catalog.providers:
            known = ", ".join(sorted(self.catalog.providers))
            bad.add("provider", f"unknown provider {shown(provider)}; known: {known}")
        if not 0 <= request.page_size <= limits.MAX_PAGE_SIZE_INSTANCES:
            bad.add("page_size", f"must be from 0 to {limits.MAX_PAGE_SIZE_INSTANCES}")
        bad.raise_if_any()
        assert level is not None
        need = Fit(request, "model")(
            "required_memory_bytes", footprint(self._profile(ref), WeightFormat(level)).total_bytes
        )
        fits = recommend_instances(self.catalog, need, provider, level)
        lacking = skus_lacking(self.catalog, level, provider)
        items, token = page(
            fits,
            request.page_size,
            request.page_token,
            f"{need}|{provider}|{int(level)}",
            default_size=limits.DEFAULT_PAGE_SIZE_INSTANCES,
            max_size=limits.MAX_PAGE_SIZE_INSTANCES,
        )
        resp = cost_pb2.RecommendInstancesResponse(next_page_token=token)
        if lacking:
            resp.assumptions.append(
                f"Left out instances whose accelerator cannot run {level.display_name}: {', '.join(lacking)}."
            )
        for f in items:
            i = f.instance
            resp.recommendations.add(
                instance=messages.instance_message(i),
                required_memory_bytes=f.required_memory_bytes,
                headroom_bytes=f.headroom_bytes,
            )
        return resp

    @translate_errors
    def ListModels(self, request: models_pb2.ListModelsRequest, context: Ctx) -> models_pb2.ListModelsResponse:
        """A page of the catalogue."""
        family = request.family.strip().lower()
        if len(family) > limits.MAX_STRING_LENGTH:
            raise invalid("family", f"longer than {limits.MAX_STRING_LENGTH} characters")
        models = [m for m in self.catalog.models if not family or m.family.lower() == family]
        items, token = page(
            models,
            request.page_size,
            request.page_token,
            f"family={family}",
            default_size=limits.DEFAULT_PAGE_SIZE_MODELS,
            max_size=limits.MAX_PAGE_SIZE_MODELS,
            size_of=lambda m: self._model_infos[m.id].ByteSize(),
        )
        return models_pb2.ListModelsResponse(models=[self._model_infos[m.id] for m in items], next_page_token=token)

    @translate_errors
    def GetModel(self, request: models_pb2.GetModelRequest, context: Ctx) -> models_pb2.GetModelResponse:
        """One catalogue model."""
        bad = Violations()
        model_id = convert.string(request.model_id, "model_id", bad)
        if not model_id.strip():
            bad.add("model_id", "must not be empty")
        bad.raise_if_any()
        return models_pb2.GetModelResponse(model=self._model_infos[self.catalog.model(model_id).id])

    @translate_errors
    @remembered
    def FindCompatibleModels(
        self, request: models_pb2.FindCompatibleModelsRequest, context: Ctx
    ) -> models_pb2.FindCompatibleModelsResponse:
        """Catalogue models that fit a budget, largest first."""
        bad = Violations()
        level = convert.quantization(request.quantization, "quantization", bad)
        if request.available_memory_bytes == 0:
            bad.add("available_memory_bytes", "must be greater than 0")
        bad.raise_if_any()
        assert level is not None
        fmt = WeightFormat(level)
        fits = find_compatible_models(
            self.catalog, lambda m: footprint(self.profiles[m.id], fmt).total_bytes, request.available_memory_bytes
        )
        items, token = page(
            fits,
            request.page_size,
            request.page_token,
            f"{int(level)}|{request.available_memory_bytes}",
            default_size=limits.DEFAULT_PAGE_SIZE_MODELS,
            max_size=limits.MAX_PAGE_SIZE_MODELS,
            size_of=lambda f: self._model_infos[f.model.id].ByteSize() + 32,
        )
        return models_pb2.FindCompatibleModelsResponse(
            models=[
                models_pb2.CompatibleModel(
                    model=self._model_infos[f.model.id],
                    required_memory_bytes=f.required_memory_bytes,
                    headroom_bytes=f.headroom_bytes,
                )
                for f in items
            ],
            next_page_token=token,
        )

    @translate_errors
    def FilterAccelerators(
        self, request: hardware_pb2.FilterAcceleratorsRequest, context: Ctx
    ) -> hardware_pb2.FilterAcceleratorsResponse:
        """Available devices meeting a requirement, with their capabilities."""
        bad = Violations()
        fleet = self._fleet(request.fleet, bad, context, required=False)
        kind = convert.enum_value(hw.RequirementKind, request.requirement.kind, "requirement.kind", bad, required=False)
        bad.raise_if_any()
        requirement = hw.RequirementKind(kind or 0)
        resp = hardware_pb2.FilterAcceleratorsResponse()
        for index, device in enumerate(fleet.accelerators):
            if not hw.satisfies(device, requirement, request.requirement.min_tpu_chips):
                continue
            gbps, is_default = self.bandwidths.bandwidth_gbps(device)
            resp.matches.add(
                index=index,
                accelerator=request.fleet.accelerators[index],
                capabilities=hardware_pb2.AcceleratorCapabilities(
                    family=convert.family_value(device.family),
                    supported_quantizations=[convert.level_value(q) for q in device.supported_quantizations],
                    preferred_quantization=convert.level_value(device.preferred_quantization),
                    rank=device.rank,
                    memory_bandwidth_gigabytes_per_second=gbps,
                    memory_bandwidth_is_default=is_default,
                    memory_bytes=device.memory_bytes,
                ),
            )
        return resp

    @translate_errors
    def ListAcceleratorModels(
        self, request: hardware_pb2.ListAcceleratorModelsRequest, context: Ctx
    ) -> hardware_pb2.ListAcceleratorModelsResponse:
        """A page of the hardware catalogue."""
        bad = Violations()
        kind = convert.enum_value(hw.AcceleratorType, request.type, "type", bad, required=False)
        bad.raise_if_any()
        entries = [
            m
            for m, a in zip(self._accelerator_models, self.catalog.accelerators, strict=True)
            if not kind or int(a.type) == kind
        ]
        items, token = page(
            entries,
            request.page_size,
            request.page_token,
            f"type={kind}",
            default_size=100,
            max_size=1000,
            size_of=lambda m: m.ByteSize(),
        )
        return hardware_pb2.ListAcceleratorModelsResponse(accelerator_models=list(items), next_page_token=token)
