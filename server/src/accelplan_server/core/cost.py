"""Cloud instance recommendation and catalogue fit queries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accelplan_server.core.catalog import Catalog, CloudInstance, ModelEntry


@dataclass(frozen=True)
class InstanceFit:
    """An instance whose accelerators together hold the model."""

    instance: CloudInstance
    required_memory_bytes: int

    @property
    def headroom_bytes(self) -> int:
        """Accelerator memory left over."""
        return self.instance.total_accelerator_memory_bytes - self.required_memory_bytes


def recommend_instances(catalog: Catalog, required_memory_bytes: int, provider: str = "") -> list[InstanceFit]:
    """Instances whose total accelerator memory >= the requirement, cheapest first.

    Ties are broken by less total memory, then by name, so the order is stable.
    Instances without a known price (0 in the price list) are left out.
    """
    wanted = provider.lower()
    fits = [
        InstanceFit(i, required_memory_bytes)
        for i in catalog.instances
        if (not wanted or i.provider == wanted)
        and i.price_per_hour_usd > 0
        and i.total_accelerator_memory_bytes >= required_memory_bytes
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
