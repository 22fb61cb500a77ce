"""RightSize: which catalogue devices, how many, at what precision serve a workload, and what to ask for."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from accelplan_server.core.catalog import AcceleratorModel, Catalog, CloudInstance
from accelplan_server.core.hardware.accelerators import AcceleratorType, Fleet
from accelplan_server.core.planning.sharding import device_link_bandwidth_gbps
from accelplan_server.core.quantization import Quantization as Q
from accelplan_server.core.scheduling.artifacts import DEFAULT_DEVICES_PER_NODE, Artifacts, artifacts_for
from accelplan_server.core.scheduling.devices import AUTO_ORDER, catalog_device, device_links, supported_levels
from accelplan_server.core.scheduling.labels import LabelTable
from accelplan_server.core.scheduling.sizing import Attempt, Cause, Progress, Sizer, candidate_counts, closest_miss

DEFAULT_MAX_DEVICES = 8


class Objective(enum.IntEnum):
    """How variants are ordered (accelplan.v1.RightSizeObjective's numbers)."""

    FEWEST_DEVICES = 1
    LOWEST_COST = 2
    FASTEST = 3


@dataclass(frozen=True)
class Variant:
    """One way to serve the workload."""

    model: AcceleratorModel
    attempt: Attempt
    instance: CloudInstance | None
    cost_per_hour_usd: float | None
    cost_per_million_tokens_usd: float | None
    artifacts: Artifacts


@dataclass(frozen=True)
class Rejection:
    """A sku with no variant, and the number that missed."""

    sku: str
    reason: str
    cause: Cause
    device_count: int = 0
    quantization: Q | None = None


@dataclass(frozen=True)
class Sizing:
    """RightSize's answer."""

    variants: list[Variant]
    rejected: list[Rejection]


class RightSizer:
    """Right-sizes one workload over catalogue skus."""

    def __init__(self, sizer: Sizer, catalog: Catalog, table: LabelTable, cheapest: dict[str, CloudInstance]) -> None:
        self.sizer = sizer
        self.catalog = catalog
        self.table = table
        self.cheapest = cheapest
        self.per_node: dict[str, int] = {}
        for i in catalog.instances:
            self.per_node[i.accelerator_sku] = max(self.per_node.get(i.accelerator_sku, 0), i.accelerator_count)
        for sku, count in self.per_node.items():
            # Cloud shapes list 1-8 GPUs; a server holds up to DEFAULT_DEVICES_PER_NODE of them.
            self.per_node[sku] = max(count, DEFAULT_DEVICES_PER_NODE)
        for t in table.tpus.values():
            self.per_node[t.sku] = t.max_chips_per_node

    def size(
        self,
        models: Sequence[AcceleratorModel],
        max_devices: int,
        objective: Objective,
        top_k: int,
        progress: Progress | None = None,
    ) -> Sizing:
        """Variants best first by ``objective`` and the rejected skus (catalogue order).

        ``progress(done, total)`` is called before each sku; an exception it raises stops the sizing.
        """
        variants: list[Variant] = []
        rejected: list[Rejection] = []
        for done, model in enumerate(models):
            if progress is not None:
                progress(done, len(models))
            found = self._one(model, max_devices)
            if isinstance(found, Rejection):
                rejected.append(found)
            else:
                variants.extend(found)
        variants.sort(key=_order(objective))
        return Sizing(variants[:top_k] if top_k else variants, rejected)

    def _one(self, model: AcceleratorModel, max_devices: int) -> list[Variant] | Rejection:
        if model.type is AcceleratorType.CPU:
            return Rejection(
                model.sku, f"{model.name} is a CPU; accelplan places models on accelerators.", Cause.UNSUPPORTED_DEVICE
            )
        if model.memory_bytes == 0:
            return Rejection(
                model.sku, f"{model.name} has no fixed memory size in the catalogue.", Cause.UNSUPPORTED_DEVICE
            )
        device = catalog_device(model)
        link = device_link_bandwidth_gbps(Fleet((), device_links(model)))
        runs = supported_levels(device, model)
        wanted = self.sizer.workload.quantization
        if wanted is not None and wanted not in runs:
            names = ", ".join(q.display_name for q in runs)
            return Rejection(
                model.sku,
                f"{model.name} does not run {wanted.display_name} (it runs {names}).",
                Cause.PRECISION,
                0,
                wanted,
            )
        levels = (wanted,) if wanted is not None else tuple(q for q in AUTO_ORDER if q in runs)
        misses: list[Attempt] = []
        for q in levels:
            fits: list[Attempt] = []
            for n in candidate_counts(max_devices):
                a = self.sizer.attempt([device] * n, link, q, model.name, need_speed=True)
                if a is None:
                    continue
                (fits if a.ok else misses).append(a)
            if fits:
                return [self._variant(model, a) for a in fits]
        miss = closest_miss(misses)
        if miss is None:
            return Rejection(model.sku, f"No split of the model over up to {max_devices} devices.", Cause.MEMORY)
        text = self.sizer.explained(miss, model.name).miss
        if miss.cause is Cause.MEMORY and wanted is None and len(levels) > 1:
            text = text.replace(" at ", " even at ", 1)
        return Rejection(model.sku, text[:1].upper() + text[1:] + ".", miss.cause, miss.device_count, miss.quantization)

    def _variant(self, model: AcceleratorModel, a: Attempt) -> Variant:
        instance = self.cheapest.get(model.sku)
        per_hour = per_million = None
        if instance is not None:
            per_hour = instance.price_per_hour_usd / instance.accelerator_count * a.device_count
            if a.decode_tokens_per_second > 0:
                tokens_per_hour = a.decode_tokens_per_second * self.sizer.workload.concurrency * 3600
                per_million = per_hour / tokens_per_hour * 1e6
        arts = artifacts_for(
            model, a, self.sizer.workload, self.table, self.per_node.get(model.sku, DEFAULT_DEVICES_PER_NODE)
        )
        return Variant(model, a, instance, per_hour, per_million, arts)


def _order(objective: Objective) -> Callable[[Variant], tuple[float, ...]]:
    """The sort key for ``objective``."""

    def cost(v: Variant) -> float:
        return v.cost_per_million_tokens_usd if v.cost_per_million_tokens_usd is not None else math.inf

    if objective is Objective.LOWEST_COST:
        return lambda v: (cost(v), v.attempt.device_count, -v.attempt.decode_tokens_per_second)
    if objective is Objective.FASTEST:
        return lambda v: (-v.attempt.decode_tokens_per_second, v.attempt.device_count, cost(v))
    return lambda v: (v.attempt.device_count, cost(v), -v.attempt.decode_tokens_per_second)
