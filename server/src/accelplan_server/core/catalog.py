"""The built-in catalogues (models, accelerator models, cloud instances), loaded once from data files.

Each row of the JSON files under ``accelplan_server/data`` carries its source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from accelplan_server.core.errors import InvalidArgument, NotFound
from accelplan_server.core.hardware.accelerators import AcceleratorType
from accelplan_server.core.quantization import Quantization, from_name


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue model."""

    id: str
    name: str
    family: str
    parameter_count: int
    active_parameter_count: int
    hf_repo: str
    default_quantization: Quantization | None
    """Published precision; None when it has no level here (e.g. FP8)."""
    max_context_length: int
    source_url: str
    architecture: dict[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class AcceleratorModel:
    """One named accelerator model (a sku) with its published specs."""

    sku: str
    name: str
    type: AcceleratorType
    memory_bytes: int
    memory_bandwidth_gbps: float
    peak_tflops: dict[str, float]
    supported_quantizations: tuple[str, ...]
    source_url: str
    vendor: str = ""
    interconnect: str = ""
    interconnect_gbps: float = 0.0
    retrieved: str = ""


@dataclass(frozen=True)
class CloudInstance:
    """One cloud instance type with its on-demand price."""

    name: str
    provider: str
    accelerator_sku: str
    accelerator_name: str
    accelerator_count: int
    accelerator_memory_bytes: int
    price_per_hour_usd: float
    region: str
    source_url: str

    @property
    def total_accelerator_memory_bytes(self) -> int:
        """Memory of all accelerators together."""
        return self.accelerator_count * self.accelerator_memory_bytes


def _load_json(data_dir: Path | None, name: str) -> Any:
    if data_dir is not None:
        return json.loads((data_dir / name).read_text(encoding="utf-8"))
    return json.loads(resources.files("accelplan_server.data").joinpath(name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Catalog:
    """All built-in catalogues, indexed for lookup."""

    models: tuple[ModelEntry, ...]
    accelerators: tuple[AcceleratorModel, ...]
    instances: tuple[CloudInstance, ...]

    @cached_property
    def _model_index(self) -> dict[str, ModelEntry]:
        index: dict[str, ModelEntry] = {}
        for m in self.models:
            index[m.id.lower()] = m
            if m.hf_repo:
                index[m.hf_repo.lower()] = m
        return index

    @cached_property
    def _sku_index(self) -> dict[str, AcceleratorModel]:
        return {a.sku.lower(): a for a in self.accelerators}

    @cached_property
    def providers(self) -> frozenset[str]:
        """Cloud providers present in the price list."""
        return frozenset(i.provider for i in self.instances)

    def model(self, model_id: str, field_path: str = "model_id") -> ModelEntry:
        """The catalogue model with this id or Hugging Face repo id (case-insensitive)."""
        found = self._model_index.get(model_id.strip().lower())
        if found is None:
            raise NotFound(field_path, f"no catalogue model {model_id!r}; ListModels lists the known ids")
        return found

    def accelerator(self, sku: str) -> AcceleratorModel | None:
        """The accelerator model with this sku, or None."""
        return self._sku_index.get(sku.lower())


def _dtype(name: str) -> Quantization | None:
    try:
        return from_name(name)
    except InvalidArgument:
        return None


def _model(row: dict[str, Any]) -> ModelEntry:
    count = int(row["parameter_count"])
    return ModelEntry(
        id=row["id"],
        name=row["name"],
        family=row["family"],
        parameter_count=count,
        active_parameter_count=int(row.get("active_parameter_count") or count),
        hf_repo=row.get("hf_repo") or "",
        default_quantization=_dtype(row.get("default_dtype") or "bf16"),
        max_context_length=int(row.get("max_context_length") or 0),
        source_url=row.get("parameter_count_source") or row.get("architecture_source") or "",
        architecture=row.get("architecture"),
    )


def _accelerator(row: dict[str, Any]) -> AcceleratorModel:
    return AcceleratorModel(
        sku=row["sku"],
        name=row["name"],
        type=AcceleratorType[row["type"].upper()],
        memory_bytes=int(row["memory_bytes"]),
        memory_bandwidth_gbps=float(row.get("memory_bandwidth_gigabytes_per_second") or 0.0),
        peak_tflops={k: float(v) for k, v in (row.get("peak_tflops") or {}).items()},
        supported_quantizations=tuple(row.get("supported_quantizations") or ()),
        source_url=row.get("source") or "",
        vendor=row.get("vendor") or "",
        interconnect=(row.get("interconnect") or {}).get("kind") or "",
        interconnect_gbps=float((row.get("interconnect") or {}).get("bandwidth_gigabytes_per_second") or 0.0),
        retrieved=row.get("retrieved") or "",
    )


def _instance(row: dict[str, Any], skus: dict[str, AcceleratorModel]) -> CloudInstance:
    sku = skus[row["accelerator_sku"]]
    return CloudInstance(
        name=row["name"],
        provider=row["provider"].lower(),
        accelerator_sku=sku.sku,
        accelerator_name=sku.name,
        accelerator_count=int(row["accelerator_count"]),
        accelerator_memory_bytes=int(row.get("accelerator_memory_bytes") or sku.memory_bytes),
        price_per_hour_usd=float(row["price_per_hour_usd"]),
        region=row.get("region") or "",
        source_url=row.get("source") or "",
    )


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Read the catalogues from ``data_dir`` or the package's embedded data files."""
    models = tuple(_model(r) for r in _load_json(data_dir, "models.json")["models"])
    accelerators = tuple(_accelerator(r) for r in _load_json(data_dir, "accelerators.json")["accelerators"])
    skus = {a.sku: a for a in accelerators}
    instances = tuple(_instance(r, skus) for r in _load_json(data_dir, "cloud_instances.json")["instances"])
    ids = [m.id.lower() for m in models]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate model ids in models.json")
    return Catalog(models, accelerators, instances)
