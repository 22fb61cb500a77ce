"""Node labels -> the node's devices, through a label table with a source per row (data/node_labels.json).

Labels read, most explicit first: accelplan's own (``accelplan.dev/accelerator.*``, as
``accelplan detect --labels`` publishes them), NVIDIA GPU Feature Discovery
(``nvidia.com/gpu.*``, MIG labels), AMD's node labeller (``amd.com/gpu.*``), GKE TPU
(``cloud.google.com/gke-tpu-*``), GKE GPU (``cloud.google.com/gke-accelerator``), then the
well-known ``node.kubernetes.io/instance-type`` looked up in the cloud price list and the
table's instance types (AWS Inferentia and Trainium). A product the table lacks still gets its memory from
the memory label and its kind's stand-in figures, with an assumption line saying so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from accelplan_server.core.catalog import AcceleratorModel, Catalog
from accelplan_server.core.errors import FieldViolation, InvalidArgument
from accelplan_server.core.hardware.accelerators import (
    Accelerator,
    AcceleratorType,
    Fleet,
    Interconnect,
    InterconnectKind,
)
from accelplan_server.core.memo import Memoizing
from accelplan_server.core.scheduling.devices import catalog_device, device_links, scaled

try:
    from accelplan_server.core.scheduling import _label_keys as _compiled
except ImportError:  # installed without a C compiler: every node takes the plain path
    _compiled = None  # type: ignore[assignment]

MIB = 2**20
GIB = 2**30
MAX_LABEL_VALUE_LENGTH = 256
"""Longest value accepted for a label the table reads (Kubernetes caps label values at 63)."""
MAX_DEVICES_PER_NODE = 1024
"""Most devices one node's labels may declare (a DGX-class node has 8-16; TPU hosts 8)."""

NV_PRODUCT = "nvidia.com/gpu.product"
NV_COUNT = "nvidia.com/gpu.count"
NV_MEMORY = "nvidia.com/gpu.memory"
NV_FAMILY = "nvidia.com/gpu.family"
NV_CLIQUE = "nvidia.com/gpu.clique"
NV_MIG_STRATEGY = "nvidia.com/mig.strategy"
AMD_DEVICE_ID = "amd.com/gpu.device-id"
AMD_PRODUCT = "amd.com/gpu.product-name"
AMD_VRAM = "amd.com/gpu.vram"
TPU_ACCELERATOR = "cloud.google.com/gke-tpu-accelerator"
TPU_TOPOLOGY = "cloud.google.com/gke-tpu-topology"
AP_SKU = "accelplan.dev/accelerator.sku"
AP_COUNT = "accelplan.dev/accelerator.count"
AP_MEMORY = "accelplan.dev/accelerator.memory-mib"
AP_INTERCONNECT = "accelplan.dev/accelerator.interconnect"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
GKE_ACCELERATOR = "cloud.google.com/gke-accelerator"

KEYS = (
    AP_SKU,
    AP_COUNT,
    AP_MEMORY,
    AP_INTERCONNECT,
    NV_PRODUCT,
    NV_COUNT,
    NV_MEMORY,
    NV_FAMILY,
    NV_CLIQUE,
    NV_MIG_STRATEGY,
    AMD_DEVICE_ID,
    AMD_PRODUCT,
    AMD_VRAM,
    TPU_ACCELERATOR,
    TPU_TOPOLOGY,
    GKE_ACCELERATOR,
    INSTANCE_TYPE,
)
"""Every label the table reads; a node's values of these decide its devices."""

_MIG_PRODUCT = re.compile(r"^(?P<base>.+)-MIG-(?P<g>\d+)g\.(?P<m>\d+)gb$")
_MIG_MIXED_COUNT = re.compile(r"^nvidia\.com/mig-(?P<g>\d+)g\.(?P<m>\d+)gb\.count$")
_FP8_FAMILIES = frozenset({"hopper", "ada-lovelace", "blackwell"})
"""GPU Feature Discovery family names whose GPUs have FP8 matrix units."""
_INTERCONNECTS = {k.name.lower(): k for k in InterconnectKind if k is not InterconnectKind.UNSPECIFIED}


@dataclass(frozen=True)
class ProductRow:
    """One label value that names an accelerator."""

    key: str
    value: str
    sku: str
    exact: bool
    source: str
    note: str


@dataclass(frozen=True)
class TpuRow:
    """One GKE TPU accelerator value."""

    value: str
    sku: str
    max_chips_per_node: int
    single_host_topologies: dict[str, str]
    source: str


@dataclass(frozen=True, eq=False)
class NodeShape(Memoizing):
    """What a node's labels say about its devices (facts the ranking derives from it are memoised on it)."""

    fleet: Fleet
    product: str
    """How the node names its device (the label value, e.g. NVIDIA-L4), or the sku's name."""
    sku: str
    """Catalogue sku ("" when the product is not in the table)."""
    assumptions: tuple[str, ...] = ()
    key: tuple[object, ...] = field(default=())
    """Identifies the shape: nodes with equal keys have identical devices."""


EMPTY = NodeShape(
    Fleet(), "", "", ("No accelerator labels found (GPU Feature Discovery, AMD, GKE TPU, accelplan.dev).",)
)


def _key(get: Callable[[str], str | None], labels: Mapping[str, str]) -> tuple[object, ...]:
    """The values of the labels that decide a node's devices: only its vendor's, a few lookups."""
    product = get(NV_PRODUCT)
    if product is not None and get(AP_SKU) is None:
        key: tuple[object, ...] = (NV_PRODUCT, product, get(NV_COUNT), get(NV_MEMORY), get(NV_FAMILY), get(NV_CLIQUE))
        strategy = get(NV_MIG_STRATEGY)
        if strategy is None:
            return key
        key += (strategy,)
        if strategy == "mixed":
            key += (tuple(sorted((k, v) for k, v in labels.items() if _MIG_MIXED_COUNT.match(k))),)
        return key
    if (sku := get(AP_SKU)) is not None:
        return (AP_SKU, sku, get(AP_COUNT), get(AP_MEMORY), get(AP_INTERCONNECT))
    if get(NV_MIG_STRATEGY) is not None:
        return _key_mig_only(get, labels)
    if (device_id := get(AMD_DEVICE_ID)) is not None or get(AMD_PRODUCT) is not None:
        return (AMD_DEVICE_ID, device_id, get(AMD_PRODUCT), get(AMD_VRAM), get(AP_COUNT))
    if (tpu := get(TPU_ACCELERATOR)) is not None:
        return (TPU_ACCELERATOR, tpu, get(TPU_TOPOLOGY), get(AP_COUNT))
    if (gke := get(GKE_ACCELERATOR)) is not None:
        return (GKE_ACCELERATOR, gke, get(INSTANCE_TYPE), get(AP_COUNT))
    return (INSTANCE_TYPE, get(INSTANCE_TYPE))


def _key_mig_only(get: Callable[[str], str | None], labels: Mapping[str, str]) -> tuple[object, ...]:
    strategy = get(NV_MIG_STRATEGY)
    key: tuple[object, ...] = (
        NV_PRODUCT,
        None,
        get(NV_COUNT),
        get(NV_MEMORY),
        get(NV_FAMILY),
        get(NV_CLIQUE),
        strategy,
    )
    if strategy == "mixed":
        key += (tuple(sorted((k, v) for k, v in labels.items() if _MIG_MIXED_COUNT.match(k))),)
    return key


def _load_rows() -> dict[str, Any]:
    text = resources.files("accelplan_server.data").joinpath("node_labels.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _bad(key: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(f'labels["{key}"]', description)])


def _count(labels: Mapping[str, str], key: str) -> int | None:
    text = labels.get(key)
    if text is None:
        return None
    try:
        n = int(text.strip())
    except ValueError:
        raise _bad(key, f"not a number: {text[:64]!r}") from None
    if not 1 <= n <= MAX_DEVICES_PER_NODE:
        raise _bad(key, f"must be from 1 to {MAX_DEVICES_PER_NODE}")
    return n


def _mib(labels: Mapping[str, str], key: str) -> int:
    """Bytes from a MiB label; 0 when absent."""
    text = labels.get(key)
    if text is None:
        return 0
    try:
        value = float(text.strip())
    except ValueError:
        raise _bad(key, f"not a number: {text[:64]!r}") from None
    if not (math.isfinite(value) and 0 < value <= 2**30):
        raise _bad(key, "must be a positive number of MiB")
    return int(value * MIB)


def _vram(labels: Mapping[str, str]) -> int:
    """Bytes from AMD's amd.com/gpu.vram ("192G"); 0 when absent."""
    text = labels.get(AMD_VRAM)
    if text is None:
        return 0
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(G|GB|Gi|GiB)?\s*", text)
    if m is None:
        raise _bad(AMD_VRAM, f"not a memory size such as 192G: {text[:64]!r}")
    return int(float(m.group(1)) * GIB)


def _topology_chips(text: str) -> int:
    m = re.fullmatch(r"\d+(x\d+){1,2}", text.strip())
    if m is None:
        raise _bad(TPU_TOPOLOGY, f"not a topology such as 2x4 or 2x2x1: {text[:64]!r}")
    chips = math.prod(int(p) for p in text.strip().split("x"))
    if chips < 1:
        raise _bad(TPU_TOPOLOGY, "must have at least one chip")
    return chips


class LabelTable:
    """The label table, resolved against the catalogue; ``shape`` reads one node's labels."""

    MAX_CACHED = 4096

    def __init__(self, catalog: Catalog, data: dict[str, Any] | None = None) -> None:
        data = data or _load_rows()
        self.catalog = catalog
        self.products: dict[tuple[str, str], ProductRow] = {}
        for r in data["products"]:
            row = ProductRow(r["key"], r["value"], r["sku"], bool(r["exact"]), r["source"], r.get("note", ""))
            if catalog.accelerator(row.sku) is None:
                raise ValueError(f"node_labels.json: {row.value} maps to unknown sku {row.sku}")
            self.products[(row.key, row.value.lower())] = row
        self.tpus: dict[str, TpuRow] = {
            r["value"]: TpuRow(
                r["value"], r["sku"], int(r["max_chips_per_node"]), r["single_host_topologies"], r["source"]
            )
            for r in data["tpu_accelerators"]
        }
        self.mig_slices: dict[str, int] = dict(data["mig"]["compute_slices"])
        self.gres_types: dict[str, str] = {k: v for k, v in data["slurm_gres_types"].items() if not k.startswith("_")}
        # Instance type -> (sku, accelerators, memory per accelerator): the price list, then the table's extras.
        self.instances: dict[str, tuple[str, int, int]] = {
            i.name: (i.accelerator_sku, i.accelerator_count, i.accelerator_memory_bytes) for i in catalog.instances
        }
        for r in data.get("instance_types", ()):
            model = catalog.accelerator(r["sku"])
            if model is None:
                raise ValueError(f"node_labels.json: instance type {r['name']} maps to unknown sku {r['sku']}")
            self.instances.setdefault(r["name"], (model.sku, int(r["accelerator_count"]), model.memory_bytes))
        self._cache: dict[tuple[object, ...], NodeShape] = {}
        # The label that selects each sku's nodes: its first exact product row, or its TPU value.
        self.selector: dict[str, tuple[str, str]] = {}
        for row in self.products.values():
            if row.exact:
                self.selector.setdefault(row.sku, (row.key, row.value))
        for tpu in self.tpus.values():
            self.selector.setdefault(tpu.sku, (TPU_ACCELERATOR, tpu.value))

    def tpu_row(self, sku: str) -> TpuRow | None:
        """The GKE accelerator value for a TPU sku."""
        return next((t for t in self.tpus.values() if t.sku == sku), None)

    def shape(self, labels: Mapping[str, str]) -> NodeShape:
        """The node's devices from its labels (cached on the labels that matter). InvalidArgument names a bad label."""
        return self._shape(_key(labels.get, labels), labels)

    def shapes(self, many: Sequence[Mapping[str, str]]) -> tuple[list[NodeShape], list[tuple[int, InvalidArgument]]]:
        """``shape`` for each node, and (position, error) for the nodes whose labels are bad.

        Shapes read before come from the compiled loop (``_label_keys``) where it is built; the
        rest, and every node without it, from ``plain_shapes``.
        """
        if _compiled is None:
            return self.plain_shapes(many)
        found, missed = _compiled.shapes(list(many), self._cache, KEYS)
        if not missed:
            return found, []
        shapes, errors = self.plain_shapes([many[i] for i in missed])
        left = iter(shapes)
        failed = {missed[i] for i, _ in errors}
        for i in missed:
            if i not in failed:
                found[i] = next(left)
        if errors:
            found = [s for s in found if s is not None]
        return found, [(missed[i], e) for i, e in errors]

    def plain_shapes(
        self, many: Sequence[Mapping[str, str]]
    ) -> tuple[list[NodeShape], list[tuple[int, InvalidArgument]]]:
        """``shapes`` in Python, node by node: the reference the compiled loop is tested against."""
        cache_get = self._cache.get
        out: list[NodeShape] = []
        errors: list[tuple[int, InvalidArgument]] = []
        for i, labels in enumerate(many):
            key = _key(labels.get, labels)
            found = cache_get(key)
            if found is None:
                try:
                    found = self._shape(key, labels)
                except InvalidArgument as e:
                    errors.append((i, e))
                    continue
            out.append(found)
        return out, errors

    def _shape(self, key: tuple[object, ...], labels: Mapping[str, str]) -> NodeShape:
        found = self._cache.get(key)
        if found is None:
            get = labels.get
            too_long = next((k for k in KEYS if len(get(k) or "") > MAX_LABEL_VALUE_LENGTH), None)
            if too_long is not None:
                raise _bad(too_long, f"longer than {MAX_LABEL_VALUE_LENGTH} characters")
            found = self._read(labels)
            found = NodeShape(found.fleet, found.product, found.sku, found.assumptions, key)
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[key] = found
        return found

    # ----- one node -----

    def _read(self, labels: Mapping[str, str]) -> NodeShape:
        if AP_SKU in labels:
            return self._accelplan(labels)
        if NV_PRODUCT in labels or NV_MIG_STRATEGY in labels:
            return self._nvidia(labels)
        if AMD_DEVICE_ID in labels or AMD_PRODUCT in labels:
            return self._amd(labels)
        if TPU_ACCELERATOR in labels:
            return self._tpu(labels)
        if GKE_ACCELERATOR in labels:
            return self._gke(labels)
        if INSTANCE_TYPE in labels and labels[INSTANCE_TYPE] in self.instances:
            return self._instance(labels[INSTANCE_TYPE])
        return EMPTY

    def _uniform(
        self,
        device: Accelerator,
        count: int,
        product: str,
        model: AcceleratorModel | None,
        notes: list[str],
        links: tuple[Interconnect, ...] | None = None,
    ) -> NodeShape:
        devices = tuple(replace(device, device_id=i) if i else device for i in range(count))
        fleet = Fleet(devices, device_links(model) if links is None else links)
        return NodeShape(fleet, product, model.sku if model else "", tuple(notes))

    def _accelplan(self, labels: Mapping[str, str]) -> NodeShape:
        sku = labels[AP_SKU].strip()
        model = self.catalog.accelerator(sku)
        if model is None:
            raise _bad(AP_SKU, f"no catalogue accelerator {sku[:64]!r}; ListAcceleratorModels lists the known skus")
        if model.memory_bytes == 0 and AP_MEMORY not in labels:
            raise _bad(AP_MEMORY, f"required: sku {model.sku} has no fixed memory size")
        count = _count(labels, AP_COUNT) or 1
        notes = [] if AP_COUNT in labels else [f"{AP_COUNT} not set: assumed 1 device."]
        device = catalog_device(model, _mib(labels, AP_MEMORY))
        links = None
        if AP_INTERCONNECT in labels:
            kind = _INTERCONNECTS.get(labels[AP_INTERCONNECT].strip().lower())
            if kind is None and labels[AP_INTERCONNECT].strip().lower() not in ("", "pcie", "none"):
                raise _bad(AP_INTERCONNECT, f"unknown interconnect; use one of {', '.join(sorted(_INTERCONNECTS))}")
            links = (Interconnect(kind, model.interconnect_gbps, kind.name.lower()),) if kind else ()
        return self._uniform(device, count, model.name, model, notes, links)

    def _nvidia(self, labels: Mapping[str, str]) -> NodeShape:
        if labels.get(NV_MIG_STRATEGY) == "mixed":
            return self._mig_mixed(labels)
        product = labels.get(NV_PRODUCT, "").strip()
        count = _count(labels, NV_COUNT)
        notes: list[str] = []
        if count is None:
            count = 1
            notes.append(f"{NV_COUNT} not set: assumed 1 GPU.")
        memory = _mib(labels, NV_MEMORY)
        mig = _MIG_PRODUCT.match(product)
        base = mig.group("base") if mig else product
        row = self.products.get((NV_PRODUCT, base.lower()))
        model = self.catalog.accelerator(row.sku) if row else None
        if model is None or row is None:
            if memory == 0:
                raise _bad(NV_MEMORY, f"required: product {product[:64]!r} is not in the label table")
            family = labels.get(NV_FAMILY, "").strip().lower()
            fp8 = family in _FP8_FAMILIES
            device = Accelerator(AcceleratorType.CUDA_GPU, memory, name=product, supports_fp8=fp8)
            notes.append(
                f"{product or 'NVIDIA GPU'} is not in the label table: memory from {NV_MEMORY}, bandwidth and "
                f"peaks from the CUDA stand-in{'; FP8 assumed from family ' + family if fp8 else ''}."
            )
            return self._uniform(device, count, product, None, notes, ())
        if not row.exact:
            notes.append(f"{product}: {row.note}")
        if mig is not None:
            g = int(mig.group("g"))
            slices = self.mig_slices.get(model.sku, 7)
            mig_memory = memory or int(mig.group("m")) * GIB
            device = scaled(catalog_device(model), g / slices, mig_memory, product)
            notes.append(
                f"MIG instance {g}g.{mig.group('m')}gb: memory from {NV_MEMORY if memory else 'the profile'}; "
                f"bandwidth and peaks scaled by {g}/{slices} compute slices."
            )
            return self._uniform(device, count, product, model, notes, ())
        links = device_links(model)
        if NV_CLIQUE in labels and not links:
            links = (Interconnect(InterconnectKind.NVLINK, model.interconnect_gbps, "nvlink clique"),)
        return self._uniform(catalog_device(model, memory, product), count, product, model, notes, links)

    def _mig_mixed(self, labels: Mapping[str, str]) -> NodeShape:
        product = labels.get(NV_PRODUCT, "").strip()
        row = self.products.get((NV_PRODUCT, product.lower()))
        model = self.catalog.accelerator(row.sku) if row else None
        devices: list[Accelerator] = []
        notes = ["MIG mixed strategy: each MIG instance is a device; pods request nvidia.com/mig-<profile>."]
        for key, _ in sorted((k, v) for k, v in labels.items() if _MIG_MIXED_COUNT.match(k)):
            m = _MIG_MIXED_COUNT.match(key)
            assert m is not None
            n = _count(labels, key) or 0
            g, gb = int(m.group("g")), int(m.group("m"))
            memory = _mib(labels, key.replace(".count", ".memory")) or gb * GIB
            name = f"{product}-MIG-{g}g.{gb}gb"
            if model is not None:
                base = catalog_device(model)
                device = scaled(base, g / self.mig_slices.get(model.sku, 7), memory, name)
            else:
                device = Accelerator(AcceleratorType.CUDA_GPU, memory, name=name)
            devices.extend([device] * n)
        if len(devices) > MAX_DEVICES_PER_NODE:
            raise _bad(NV_MIG_STRATEGY, f"declares {len(devices)} MIG devices; at most {MAX_DEVICES_PER_NODE}")
        if not devices:
            return EMPTY
        return NodeShape(Fleet(tuple(devices)), product, model.sku if model else "", tuple(notes))

    def _amd(self, labels: Mapping[str, str]) -> NodeShape:
        device_id = labels.get(AMD_DEVICE_ID, "").strip().lower().removeprefix("0x")
        row = self.products.get((AMD_DEVICE_ID, device_id))
        model = self.catalog.accelerator(row.sku) if row else None
        memory = _vram(labels)
        count = _count(labels, AP_COUNT)
        notes = [] if count else [f"AMD's labeller publishes no device count: assumed 1 GPU (set {AP_COUNT})."]
        product = labels.get(AMD_PRODUCT, "").strip() or (model.name if model else f"AMD GPU {device_id}")
        if model is None:
            if memory == 0:
                raise _bad(AMD_VRAM, f"required: device id {device_id[:16]!r} is not in the label table")
            notes.append(
                f"{product} is not in the label table: memory from {AMD_VRAM}, bandwidth from the ROCm stand-in."
            )
            device = Accelerator(AcceleratorType.ROCM_GPU, memory, name=product)
            return self._uniform(device, count or 1, product, None, notes, ())
        return self._uniform(catalog_device(model, memory, product), count or 1, product, model, notes)

    def _tpu(self, labels: Mapping[str, str]) -> NodeShape:
        value = labels[TPU_ACCELERATOR].strip()
        row = self.tpus.get(value)
        if row is None:
            raise _bad(
                TPU_ACCELERATOR, f"unknown TPU accelerator {value[:64]!r}; known: {', '.join(sorted(self.tpus))}"
            )
        model = self.catalog.accelerator(row.sku)
        assert model is not None
        notes: list[str] = []
        count = _count(labels, AP_COUNT)
        if count is None:
            topology = labels.get(TPU_TOPOLOGY)
            if topology is None:
                count = row.max_chips_per_node
                notes.append(f"{TPU_TOPOLOGY} not set: assumed {count} chips per node.")
            else:
                chips = _topology_chips(topology)
                count = min(chips, row.max_chips_per_node)
                if chips > count:
                    notes.append(f"Multi-host slice {topology} ({chips} chips): {count} chips on this node.")
        return self._uniform(catalog_device(model, 0, value), count, value, model, notes)

    def _gke(self, labels: Mapping[str, str]) -> NodeShape:
        value = labels[GKE_ACCELERATOR].strip()
        row = self.products.get((GKE_ACCELERATOR, value.lower()))
        if row is None:
            known = sorted(v for k, v in self.products if k == GKE_ACCELERATOR)
            raise _bad(GKE_ACCELERATOR, f"unknown GKE accelerator {value[:64]!r}; known: {', '.join(known)}")
        model = self.catalog.accelerator(row.sku)
        assert model is not None
        notes: list[str] = []
        count = _count(labels, AP_COUNT)
        machine = self.instances.get(labels.get(INSTANCE_TYPE, ""))
        if count is None and machine is not None and machine[0] == model.sku:
            count = machine[1]
        if count is None:
            count = 1
            notes.append(f"GKE publishes no GPU count label: assumed 1 GPU (set {AP_COUNT}).")
        return self._uniform(catalog_device(model), count, model.name, model, notes)

    def _instance(self, name: str) -> NodeShape:
        sku, count, memory = self.instances[name]
        model = self.catalog.accelerator(sku)
        assert model is not None
        note = f"Devices from {INSTANCE_TYPE}={name}: {count} x {model.name}."
        return self._uniform(catalog_device(model, memory), count, model.name, model, [note])
