"""The accelplan.v1.PlannerService servicer: validate, convert, call the core, convert back."""

from __future__ import annotations

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
from accelplan_server import convert, limits
from accelplan_server.convert import Violations
from accelplan_server.core import hardware as hw
from accelplan_server.core import quantization as quant
from accelplan_server.core.catalog import Catalog, ModelEntry
from accelplan_server.core.cost import find_compatible_models, recommend_instances
from accelplan_server.core.errors import invalid
from accelplan_server.core.memory import estimate_memory
from accelplan_server.core.sharding import Plan, plan_sharding
from accelplan_server.core.suggest import suggest_quantization
from accelplan_server.core.throughput import BandwidthTable
from accelplan_server.core.training import (
    DEFAULT_QLORA_BITS,
    TrainingMethod,
    TrainingTarget,
    estimate_training_memory,
)
from accelplan_server.paging import page
from accelplan_server.status import translate_errors

Ctx = grpc.ServicerContext


def level_info(level: quant.Quantization) -> quantization_pb2.QuantizationLevelInfo:
    """The QuantizationLevelInfo message for a level."""
    return quantization_pb2.QuantizationLevelInfo(
        level=convert.level_value(level),
        bits_per_param=level.bits,
        memory_reduction_factor=level.memory_reduction_factor,
        display_name=level.display_name,
    )


_LEVEL_INFOS = {q: level_info(q) for q in quant.Quantization}


def model_info(m: ModelEntry) -> models_pb2.ModelInfo:
    """The ModelInfo message for a catalogue entry."""
    return models_pb2.ModelInfo(
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


def plan_message(plan: Plan, fleet: hw.Fleet) -> planning_pb2.ShardingPlan:
    """The ShardingPlan message; each shard's accelerator is the fleet device it runs on."""
    msg = planning_pb2.ShardingPlan(
        strategy=convert.strategy_value(plan.strategy),
        device_count=plan.device_count,
        total_memory_bytes=plan.total_memory_bytes,
        fits_in_memory=plan.fits_in_memory,
        layer_count=plan.layer_count,
        assumptions=plan.assumptions,
    )
    for s in plan.shards:
        device = convert.accelerator_message(fleet.accelerators[s.device_index] if s.device_index >= 0 else s.device)
        shard = msg.shards.add(
            shard_id=s.shard_id,
            first_layer=s.first_layer,
            last_layer=s.last_layer,
            memory_bytes=s.memory_bytes,
            accelerator=device,
        )
        if s.device_index >= 0:
            shard.accelerator_index = s.device_index
    if plan.tokens_per_second is not None:
        msg.estimated_tokens_per_second = plan.tokens_per_second
    return msg


def _require_available(fleet: hw.Fleet, field: str) -> None:
    if fleet.accelerators and not fleet.available():
        raise invalid(field, "every accelerator is marked unavailable; nothing to plan on")


class PlannerServicer(planner_service_pb2_grpc.PlannerServiceServicer):
    """Implements accelplan.v1.PlannerService over a loaded catalogue."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.bandwidths = BandwidthTable.from_catalog(catalog)
        self._levels = quantization_pb2.ListQuantizationLevelsResponse(levels=list(_LEVEL_INFOS.values()))

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
            return _LEVEL_INFOS[quant.from_bits(request.bits)]
        if which == "name":
            return _LEVEL_INFOS[quant.from_name(request.name)]
        bad = Violations()
        if which is None:
            bad.add("selector", "set one of level, bits or name")
        level = convert.quantization(request.level, "level", bad) if which == "level" else None
        bad.raise_if_any()
        assert level is not None
        return _LEVEL_INFOS[level]

    @translate_errors
    def EstimateMemory(self, request: planning_pb2.EstimateMemoryRequest, context: Ctx) -> planning_pb2.MemoryEstimate:
        """Inference memory for a model at a precision."""
        bad = Violations()
        ref = convert.model_spec(request.model, "model", bad, present=request.HasField("model"))
        level = convert.quantization(request.quantization, "quantization", bad)
        bad.raise_if_any()
        assert level is not None
        params, _ = ref.resolve(self.catalog)
        e = estimate_memory(params, level)
        return planning_pb2.MemoryEstimate(
            parameter_count=e.parameter_count,
            quantization=convert.level_value(level),
            weights_bytes=e.weights_bytes,
            overhead_bytes=e.overhead_bytes,
            total_bytes=e.total_bytes,
            assumptions=e.assumptions,
        )

    @translate_errors
    def SuggestQuantization(
        self, request: planning_pb2.SuggestQuantizationRequest, context: Ctx
    ) -> planning_pb2.SuggestQuantizationResponse:
        """The widest precision that fits the fleet."""
        bad = Violations()
        ref = convert.model_spec(request.model, "model", bad, present=request.HasField("model"))
        fleet = convert.fleet(request.fleet, "fleet", bad, required=False)
        bad.raise_if_any()
        params, _ = ref.resolve(self.catalog)
        s = suggest_quantization(params, fleet, self.bandwidths, consider_sharding=request.consider_sharding)
        msg = planning_pb2.SuggestQuantizationResponse(
            quantization=convert.level_value(s.quantization),
            reason=s.reason,
            family=convert.family_value(s.family),
            required_memory_bytes=s.required_memory_bytes,
            available_memory_bytes=s.available_memory_bytes,
            fits=s.fits,
        )
        if s.plan is not None:
            msg.assumed_plan.CopyFrom(plan_message(s.plan, fleet))
        return msg

    @translate_errors
    def PlanSharding(self, request: planning_pb2.PlanShardingRequest, context: Ctx) -> planning_pb2.ShardingPlan:
        """Where each part of the model runs, and how fast."""
        bad = Violations()
        ref = convert.model_spec(request.model, "model", bad, present=request.HasField("model"))
        level = convert.quantization(request.quantization, "quantization", bad)
        fleet = convert.fleet(request.fleet, "fleet", bad, required=True)
        bad.raise_if_any()
        assert level is not None
        _require_available(fleet, "fleet.accelerators")
        params, _ = ref.resolve(self.catalog)
        return plan_message(plan_sharding(params, level, fleet, self.bandwidths), fleet)

    @translate_errors
    def EstimateTrainingMemory(
        self, request: training_pb2.EstimateTrainingMemoryRequest, context: Ctx
    ) -> training_pb2.EstimateTrainingMemoryResponse:
        """Fine-tuning memory by component."""
        bad = Violations()
        ref = convert.model_spec(request.model, "model", bad, present=request.HasField("model"))
        method = convert.enum_value(TrainingMethod, request.method, "method", bad, required=True)
        target = convert.enum_value(TrainingTarget, request.target, "target", bad, required=False)
        bits = request.qlora_bits or DEFAULT_QLORA_BITS
        if request.qlora_bits and request.method != training_pb2.TRAINING_METHOD_QLORA:
            bad.add("qlora_bits", "only applies to TRAINING_METHOD_QLORA")
        elif not 1 <= bits <= 16:
            bad.add("qlora_bits", "must be from 1 to 16 (0 means 4)")
        bad.raise_if_any()
        assert method is not None
        params, _ = ref.resolve(self.catalog)
        e = estimate_training_memory(params, TrainingMethod(method), TrainingTarget(target or TrainingTarget.GPU), bits)
        return training_pb2.EstimateTrainingMemoryResponse(
            model_bytes=e.model_bytes,
            optimizer_bytes=e.optimizer_bytes,
            activation_bytes=e.activation_bytes,
            total_bytes=e.total_bytes,
            method=convert.method_value(e.method),
            target=convert.target_value(e.target),
            assumptions=e.assumptions,
        )

    @translate_errors
    def RecommendInstances(
        self, request: cost_pb2.RecommendInstancesRequest, context: Ctx
    ) -> cost_pb2.RecommendInstancesResponse:
        """Instances that hold the model, cheapest first."""
        bad = Violations()
        ref = convert.model_spec(request.model, "model", bad, present=request.HasField("model"))
        level = convert.quantization(request.quantization, "quantization", bad)
        provider = convert.string(request.provider, "provider", bad).strip().lower()
        if provider and len(provider) <= limits.MAX_STRING_LENGTH and provider not in self.catalog.providers:
            bad.add("provider", f"unknown provider {provider!r}; known: {', '.join(sorted(self.catalog.providers))}")
        if not 0 <= request.page_size <= limits.MAX_PAGE_SIZE_INSTANCES:
            bad.add("page_size", f"must be from 0 to {limits.MAX_PAGE_SIZE_INSTANCES}")
        bad.raise_if_any()
        assert level is not None
        params, _ = ref.resolve(self.catalog)
        need = estimate_memory(params, level).total_bytes
        fits = recommend_instances(self.catalog, need, provider)
        items, token = page(
            fits,
            request.page_size,
            request.page_token,
            f"{need}|{provider}",
            default_size=limits.DEFAULT_PAGE_SIZE_INSTANCES,
            max_size=limits.MAX_PAGE_SIZE_INSTANCES,
        )
        resp = cost_pb2.RecommendInstancesResponse(next_page_token=token)
        for f in items:
            i = f.instance
            resp.recommendations.add(
                instance=cost_pb2.CloudInstance(
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
                ),
                required_memory_bytes=f.required_memory_bytes,
                headroom_bytes=f.headroom_bytes,
            )
        return resp

    @translate_errors
    def ListModels(self, request: models_pb2.ListModelsRequest, context: Ctx) -> models_pb2.ListModelsResponse:
        """A page of the catalogue."""
        family = convert.string(request.family, "family", Violations()).strip().lower()
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
        )
        return models_pb2.ListModelsResponse(models=[model_info(m) for m in items], next_page_token=token)

    @translate_errors
    def GetModel(self, request: models_pb2.GetModelRequest, context: Ctx) -> models_pb2.GetModelResponse:
        """One catalogue model."""
        bad = Violations()
        model_id = convert.string(request.model_id, "model_id", bad)
        if not model_id.strip():
            bad.add("model_id", "must not be empty")
        bad.raise_if_any()
        return models_pb2.GetModelResponse(model=model_info(self.catalog.model(model_id)))

    @translate_errors
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
        fits = find_compatible_models(self.catalog, level, request.available_memory_bytes)
        return models_pb2.FindCompatibleModelsResponse(
            models=[
                models_pb2.CompatibleModel(
                    model=model_info(f.model),
                    required_memory_bytes=f.required_memory_bytes,
                    headroom_bytes=f.headroom_bytes,
                )
                for f in fits
            ]
        )

    @translate_errors
    def FilterAccelerators(
        self, request: hardware_pb2.FilterAcceleratorsRequest, context: Ctx
    ) -> hardware_pb2.FilterAcceleratorsResponse:
        """Available devices meeting a requirement, with their capabilities."""
        bad = Violations()
        fleet = convert.fleet(request.fleet, "fleet", bad, required=False)
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
