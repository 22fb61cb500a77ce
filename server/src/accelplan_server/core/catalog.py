"""The built-in catalogues (models, accelerator models, cloud instances), loaded once from data files.

Each row of the JSON files under ``accelplan_server/data`` carries its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from accelplan_server.core.errors import InvalidArgument, NotFound, shown
from accelplan_server.core.hardware.accelerators import AcceleratorType
from accelplan_server.core.model.architecture import Architecture
from accelplan_server.core.names import closest, did_you_mean
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
    decode_mbu: float = 0.0
    """Measured share of peak bandwidth that decode weight reads sustain (0: not measured)."""
    decode_mbu_source: str = ""
    """Where decode_mbu comes from."""
    fp16_accumulate_tflops: float = 0.0
    """Dense FP16 tensor rate with FP16 accumulation where it differs from the FP32-accumulate peak_tflops
    (GeForce cards run it at twice the rate); 0 when the same or unknown."""

    @cached_property
    def levels(self) -> tuple[Quantization, ...]:
        """supported_quantizations as levels, widest first; names that are no level (tf32, fp4) skipped."""
        listed = {q for q in map(_dtype, self.supported_quantizations) if q is not None}
        return tuple(q for q in LEVEL_ORDER if q in listed)


LEVEL_ORDER = (
    Quantization.NONE,
    Quantization.FLOAT16,
    Quantization.BFLOAT16,
    Quantization.INT8,
    Quantization.INT4,
    Quantization.FP8,
)
"""Levels widest first, FP8 last (as the per-kind tables list them)."""


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


class CatalogError(ValueError):
    """A catalogue file that cannot be read: the message names the file, the row and the field."""


_LIST_KEY = {"models.json": "models", "accelerators.json": "accelerators", "cloud_instances.json": "instances"}


def _load_rows(data_dir: Path | None, name: str) -> list[Any]:
    """The rows of one catalogue file; CatalogError naming the file when it is missing or malformed."""
    key = _LIST_KEY[name]
    if data_dir is not None:
        path = data_dir / name
        if not path.is_file():
            raise CatalogError(
                f"{path}: no such file (--data-dir needs {', '.join(_LIST_KEY)}; copy the ones you do not change)"
            )
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        text, where = resources.files("accelplan_server.data").joinpath(name).read_text(encoding="utf-8"), name
    try:
        data = json.loads(text)
    except ValueError as e:
        raise CatalogError(f"{where}: not valid JSON: {e}") from None
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CatalogError(f"{where}: must be an object with a list {key!r}")
    return rows


class _Row:
    """One catalogue row; every accessor names the file, row and field when a value is wrong."""

    def __init__(self, where: str, index: int, row: object) -> None:
        self.where = where
        self.index = index
        if not isinstance(row, dict):
            raise CatalogError(f"{where}: row {index}: must be a JSON object")
        self.row: dict[str, Any] = row
        self.label = str(row.get("id") or row.get("sku") or row.get("name") or "")

    def error(self, key: str, problem: str) -> CatalogError:
        """The error for ``key`` of this row."""
        label = f" ({self.label})" if self.label else ""
        return CatalogError(f"{self.where}: row {self.index}{label}: field {key!r}: {problem}")

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value, or ``default`` when absent or null."""
        value = self.row.get(key)
        return default if value is None else value

    def text(self, key: str, *, required: bool = True) -> str:
        """A string field."""
        value = self.row.get(key)
        if value is None or value == "":
            if required:
                raise self.error(key, "required")
            return ""
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        return value

    def number(self, key: str, *, required: bool = True, integer: bool = False) -> float:
        """A non-negative number (``integer``: a whole one); 0 when absent and not required."""
        value = self.row.get(key)
        if value is None:
            if required:
                raise self.error(key, "required")
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.error(key, f"must be a non-negative number, got {value!r}")
        if integer and not float(value).is_integer():
            raise self.error(key, f"must be a whole number, got {value!r}")
        return value

    def enum(self, key: str, names: Iterable[str]) -> str:
        """A string that must be one of ``names`` (case-insensitive)."""
        value = self.text(key).lower()
        known = sorted(names)
        if value not in known:
            raise self.error(key, f"unknown value {value!r}; one of {', '.join(known)}")
        return value


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
            suggestions = tuple(closest(model_id, (m.id for m in self.models)))
            raise NotFound(
                field_path,
                f"no catalogue model {shown(model_id)}{did_you_mean(list(suggestions))} "
                "(`accelplan models` or ListModels lists every id)",
                reason="UNKNOWN_MODEL",
                name=model_id,
                suggestions=suggestions,
            )
        return found

    def accelerator(self, sku: str) -> AcceleratorModel | None:
        """The accelerator model with this sku, or None."""
        return self._sku_index.get(sku.lower())


def _dtype(name: str) -> Quantization | None:
    try:
        return from_name(name)
    except InvalidArgument:
        return None


def _model(r: _Row) -> ModelEntry:
    count = int(r.number("parameter_count", integer=True))
    dtype = r.text("default_dtype", required=False)
    if dtype and _dtype(dtype) is None and dtype.lower() not in _NON_LEVEL_DTYPES:
        raise r.error("default_dtype", f"unknown precision {dtype!r}; e.g. bf16, fp16, fp8, int4")
    architecture = r.get("architecture")
    if architecture is not None and not isinstance(architecture, dict):
        raise r.error("architecture", "must be a config.json-style object")
    return ModelEntry(
        id=r.text("id"),
        name=r.text("name"),
        family=r.text("family"),
        parameter_count=count,
        active_parameter_count=int(r.number("active_parameter_count", required=False, integer=True) or count),
        hf_repo=r.text("hf_repo", required=False),
        default_quantization=_dtype(dtype or "bf16"),
        max_context_length=int(r.number("max_context_length", required=False, integer=True)),
        source_url=r.text("parameter_count_source", required=False) or r.text("architecture_source", required=False),
        architecture=architecture,
    )


_NON_LEVEL_DTYPES = frozenset({"fp4", "mxfp4", "nvfp4", "tf32"})
"""Published precisions that have no QuantizationLevel (default_quantization None)."""
PRECISION_NAMES = frozenset({"fp32", "tf32", "fp16", "bf16", "fp8", "fp6", "fp4", "mxfp4", "nvfp4", "int8", "int4"})
"""Names the hardware catalogue may use for a precision (peak_tflops keys, supported_quantizations)."""


def _accelerator(r: _Row) -> AcceleratorModel:
    peaks = r.get("peak_tflops", {})
    if not isinstance(peaks, dict) or not all(isinstance(v, (int, float)) for v in peaks.values()):
        raise r.error("peak_tflops", "must map precision names to numbers")
    link = r.get("interconnect", {})
    if not isinstance(link, dict):
        raise r.error("interconnect", "must be an object with kind and bandwidth_gigabytes_per_second")
    mbu = r.get("decode_mbu", {})
    if not isinstance(mbu, dict) or not isinstance(mbu.get("value", 0.0), (int, float)):
        raise r.error("decode_mbu", "must be an object with a numeric value and its source")
    levels = r.get("supported_quantizations", [])
    if not isinstance(levels, list) or not all(isinstance(q, str) for q in levels):
        raise r.error("supported_quantizations", "must be a list of precision names")
    for field_name, names in (("supported_quantizations", levels), ("peak_tflops", list(peaks))):
        unknown = [q for q in names if q.lower() not in PRECISION_NAMES]
        if unknown:
            raise r.error(field_name, f"unknown precision {unknown[0]!r}; one of {', '.join(sorted(PRECISION_NAMES))}")
    return AcceleratorModel(
        sku=r.text("sku"),
        name=r.text("name"),
        type=AcceleratorType[r.enum("type", (t.name.lower() for t in AcceleratorType)).upper()],
        memory_bytes=int(r.number("memory_bytes", integer=True)),
        memory_bandwidth_gbps=float(r.number("memory_bandwidth_gigabytes_per_second", required=False)),
        peak_tflops={k: float(v) for k, v in peaks.items()},
        supported_quantizations=tuple(levels),
        source_url=r.text("source", required=False),
        vendor=r.text("vendor", required=False),
        interconnect=str(link.get("kind") or ""),
        interconnect_gbps=float(link.get("bandwidth_gigabytes_per_second") or 0.0),
        retrieved=r.text("retrieved", required=False),
        decode_mbu=float(mbu.get("value") or 0.0),
        decode_mbu_source=str(mbu.get("source") or ""),
        fp16_accumulate_tflops=float(r.number("fp16_accumulate_dense_tflops", required=False)),
    )


def _instance(r: _Row, skus: dict[str, AcceleratorModel]) -> CloudInstance:
    sku_name = r.text("accelerator_sku")
    sku = skus.get(sku_name)
    if sku is None:
        raise r.error(
            "accelerator_sku",
            f"no accelerator sku {sku_name!r} in accelerators.json{did_you_mean(closest(sku_name, skus))}",
        )
    return CloudInstance(
        name=r.text("name"),
        provider=r.text("provider").lower(),
        accelerator_sku=sku.sku,
        accelerator_name=sku.name,
        accelerator_count=int(r.number("accelerator_count", integer=True)),
        accelerator_memory_bytes=int(r.number("accelerator_memory_bytes", required=False, integer=True))
        or sku.memory_bytes,
        price_per_hour_usd=float(r.number("price_per_hour_usd")),
        region=r.text("region", required=False),
        source_url=r.text("source", required=False),
    )


def _unique(rows: Sequence[_Row], names: Sequence[str], key: str) -> None:
    """CatalogError naming both rows when two rows share a name (case-insensitive)."""
    first: dict[str, int] = {}
    for r, name in zip(rows, names, strict=True):
        earlier = first.setdefault(name.strip().lower(), r.index)
        if earlier != r.index:
            raise r.error(key, f"repeats the {key} {shown(name)} of row {earlier}; each {key} may appear once")


def _rows(data_dir: Path | None, name: str) -> list[_Row]:
    where = str(data_dir / name) if data_dir is not None else name
    return [_Row(where, i, row) for i, row in enumerate(_load_rows(data_dir, name))]


def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Read the catalogues from ``data_dir`` or the package's embedded data files.

    CatalogError (a ValueError) names the file, row and field of the first thing that cannot be read:
    a missing file, malformed JSON, a missing or mistyped field, an unknown enum name or sku, a model
    architecture that does not parse, a duplicate id.
    """
    model_rows = _rows(data_dir, "models.json")
    models = tuple(_model(r) for r in model_rows)
    for r, m in zip(model_rows, models, strict=True):
        if m.architecture is not None:
            try:
                Architecture.from_config(m.architecture)
            except InvalidArgument as e:
                raise r.error("architecture", str(e)) from None
    _unique(model_rows, [m.id for m in models], "id")
    accelerator_rows = _rows(data_dir, "accelerators.json")
    accelerators = tuple(_accelerator(r) for r in accelerator_rows)
    _unique(accelerator_rows, [a.sku for a in accelerators], "sku")
    skus = {a.sku: a for a in accelerators}
    instances = tuple(_instance(r, skus) for r in _rows(data_dir, "cloud_instances.json"))
    return Catalog(models, accelerators, instances)
