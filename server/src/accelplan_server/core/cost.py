"""Cloud instance recommendation and catalogue fit queries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accelplan_server.core.catalog import Catalog, CloudInstance, ModelEntry
from accelplan_server.core.quantization import Quantization


@dataclass(frozen=True)
class InstanceFit:
    """An instance whose accelerators together hold the model."""

    instance: CloudInstance
    required_memory_bytes: int

    @property
    def headroom_bytes(self) -> int:
        """Accelerator memory left over."""
        return self.instance.total_accelerator_memory_bytes - self.required_memory_bytes


def runs(catalog: Catalog, instance: CloudInstance, quantization: Quantization | None) -> bool:
    """Whether the instance's accelerator sku lists the level (None: no precision asked)."""
    if quantization is None:
        return True
    sku = catalog.accelerator(instance.accelerator_sku)
    return sku is not None and quantization in sku.levels


def skus_lacking(catalog: Catalog, quantization: Quantization, provider: str = "") -> list[str]:
    """Accelerator skus of the price list (for ``provider``) that cannot run the level, sorted."""
    wanted = provider.lower()
    return sorted(
        {
            i.accelerator_sku
            for i in catalog.instances
            if (not wanted or i.provider == wanted) and not runs(catalog, i, quantization)
        }
    )


def recommend_instances(
    catalog: Catalog, required_memory_bytes: int, provider: str = "", quantization: Quantization | None = None
) -> list[InstanceFit]:
    """Instances whose total accelerator memory >= the requirement, cheapest first.

    Ties are broken by less total memory, then by name, so the order is stable.
    Instances without a known price (0 in the price list) are left out, and so are
    instances whose accelerator cannot run ``quantization``.
    """
    wanted = provider.lower()
    fits = [
        InstanceFit(i, required_memory_bytes)
        for i in catalog.instances
        if (not wanted or i.provider == wanted)
        and i.price_per_hour_usd > 0
        and i.total_accelerator_memory_bytes >= required_memory_bytes
        and runs(catalog, i, quantization)
    ]
    fits.sort(key=lambda f: (f.instance.price_per_hour_usd, f.instance.total_accelerator_memory_bytes, f.instance.name))
    return fits


@dataclass(frozen=True)
class ModelFit:
    """A catalogue model that fits a memory budget."""

    model: ModelEntry
    required_memory_bytes: int
    headroom_bytes: int


def find_compatible_models(
    catalog: Catalog, need_for: Callable[[ModelEntry], int], available_memory_bytes: int
) -> list[ModelFit]:
    """Models whose memory need (``need_for``) fits the budget, largest first (ties by id)."""
    fits = []
    for model in catalog.models:
        need = need_for(model)
        if need <= available_memory_bytes:
            fits.append(ModelFit(model, need, available_memory_bytes - need))
    fits.sort(key=lambda f: (-f.model.parameter_count, f.model.id))
    return fits


def cheapest_per_device(catalog: Catalog) -> dict[str, CloudInstance]:
    """For each accelerator sku, the priced instance with the lowest price per device (ties: fewer devices, name)."""
    best: dict[str, CloudInstance] = {}
    for i in catalog.instances:
        if i.price_per_hour_usd <= 0 or i.accelerator_count <= 0:
            continue
        key = (i.price_per_hour_usd / i.accelerator_count, i.accelerator_count, i.name)
        held = best.get(i.accelerator_sku)
        if held is None or key < (held.price_per_hour_usd / held.accelerator_count, held.accelerator_count, held.name):
            best[i.accelerator_sku] = i
    return best
