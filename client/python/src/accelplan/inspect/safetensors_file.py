"""Safetensors checkpoints (one file or a sharded index) through ``safetensors.safe_open``.

safe_open memory-maps the file and parses only its JSON header, so a 100 GB
checkpoint is inspected without reading its tensors.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from pathlib import Path

from accelplan.inspect import hfconfig
from accelplan.inspect.result import InspectError, Inspection

# Bits per element of each safetensors dtype.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
    "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
DISPLAY = {"F16": "FP16", "BF16": "BF16", "F32": "FP32", "F8_E4M3": "FP8 E4M3", "F8_E5M2": "FP8 E5M2", "I8": "INT8"}
# Tensors that hold quantization bookkeeping, not model parameters.
# GPTQ/AWQ zero points, scales and group indices; FP8 weight/activation/KV scales; bitsandbytes state.
_AUX_SUFFIXES = (
    ".qzeros", ".scales", ".g_idx", ".weight_scale", ".input_scale", ".weight_scale_inv", ".k_scale", ".v_scale",
    ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
)  # fmt: skip
_QUANT_DTYPES = ("F8_E4M3", "F8_E5M2", "I8", "U8", "I32")


def _safe_open() -> object:
    try:
        from safetensors import safe_open
    except ImportError:
        raise InspectError(
            "safetensors", "the safetensors package is missing: pip install 'accelplan[inspect]'"
        ) from None
    return safe_open


def read_shapes(path: Path, only: set[str] | None = None) -> dict[str, tuple[str, list[int]]]:
    """{tensor name: (dtype, shape)} from one file's header; the tensors are never read."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise InspectError(path, f"truncated header: the file has {size} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", head)
    if n > size - 8:
        raise InspectError(
            path, f"header length {n:,} is larger than the file ({size:,} bytes): truncated or not safetensors"
        )
    safe_open = _safe_open()
    try:
        with safe_open(str(path), framework="numpy") as st:  # type: ignore[operator]
            out = {}
            for name in st.keys():  # noqa: SIM118  (safe_open is not a dict)
                if only is not None and name not in only:
                    continue
                sl = st.get_slice(name)
                out[name] = (str(sl.get_dtype()), [int(d) for d in sl.get_shape()])
            return out
    except InspectError:
        raise
    except Exception as e:  # SafetensorError: unknown dtype, bad JSON, offsets past the end ...
        raise InspectError(path, f"not a valid safetensors file: {e}") from None


def inspect_files(files: dict[Path, set[str] | None], label: str, fmt: str, config_dir: Path | None) -> Inspection:
    """Count parameters over one or more safetensors files."""
    tensors: dict[str, tuple[str, list[int]]] = {}
    for path, only in files.items():
        tensors.update(read_shapes(path, only))
    config = hfconfig.load(config_dir / "config.json") if config_dir is not None else None
    quant = hfconfig.quantization(config[1]) if config else None
    by_dtype: Counter[str] = Counter()
    bits = 0
    notes = []
    quantized = quant is not None or any(d in _QUANT_DTYPES for d, _ in tensors.values())
    aux = 0
    for name, (dtype, shape) in tensors.items():
        numel = math.prod(shape)
        if quantized and (name.endswith(_AUX_SUFFIXES) or ".quant_state." in name):
            aux += 1
            continue
        if name.endswith(".qweight") and quant is not None and quant.bits:
            per = DTYPE_BITS[dtype] // quant.bits  # GPTQ/AWQ pack 32/bits weights per int32
            by_dtype[f"INT{quant.bits}"] += numel * per
            bits += numel * DTYPE_BITS[dtype]
            continue
        by_dtype[DISPLAY.get(dtype, dtype)] += numel
        bits += numel * DTYPE_BITS.get(dtype, 0)
    if aux:
        notes.append(f"{aux} quantization scale/zero-point tensors are bookkeeping, not parameters: not counted")
    total = sum(by_dtype.values())
    if total == 0:
        raise InspectError(label, "no tensors")
    main = by_dtype.most_common(1)[0][0]
    precision = main
    group = 0
    if quant is not None and main.startswith("INT"):
        group = quant.group_size
        precision = (
            f"{main} ({quant.method.upper() or 'quantized'}, group {group})"
            if group
            else f"{main} ({quant.method.upper()})"
        )
    elif quant is not None:
        notes.append(f"config.json quantization_config: {quant.method or 'unnamed'} ({quant.bits or '?'} bits)")
    arch = hfconfig.architecture(config[1]) if config else None
    if config is None:
        notes.append("no config.json beside the weights: the architecture is unknown, sizing uses the parameter count")
    return Inspection(
        path=label,
        format=fmt,
        parameter_count=total,
        precision=precision,
        bits_per_weight=bits / total,
        params_by_dtype=dict(by_dtype),
        tensor_count=len(tensors),
        group_size=group,
        architecture=arch,
        hf_config_json=config[0] if config else "",
        notes=notes,
    )


def inspect_file(path: Path) -> Inspection:
    """A single .safetensors file, with config.json from its folder when there."""
    return inspect_files({path: None}, str(path), "safetensors", path.parent)


def inspect_index(index: Path) -> Inspection:
    """A sharded checkpoint: the index's weight_map names each tensor's shard."""
    try:
        data = json.loads(index.read_text())
        weight_map: dict[str, str] = data["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InspectError(index, f"not a safetensors index (needs a weight_map object): {e}") from None
    shards: dict[Path, set[str] | None] = {}
    for tensor, shard in weight_map.items():
        p = index.parent / shard
        if not p.is_file():
            raise InspectError(index, f"shard {shard} (holding {tensor}) is missing")
        group = shards.setdefault(p, set())
        assert group is not None
        group.add(tensor)
    result = inspect_files(shards, str(index), "safetensors-sharded", index.parent)
    if result.tensor_count != len(weight_map):
        raise InspectError(index, f"weight_map names {len(weight_map)} tensors, the shards hold {result.tensor_count}")
    return result
