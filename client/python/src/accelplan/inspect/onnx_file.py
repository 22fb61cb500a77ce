"""ONNX graphs through ``onnx.load(load_external_data=False)``: initializers' shapes, never their external data."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from accelplan.inspect.result import InspectError, Inspection

_DISPLAY = {"FLOAT": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16", "INT8": "INT8", "UINT8": "UINT8",
            "FLOAT8E4M3FN": "FP8 E4M3", "INT4": "INT4", "UINT4": "UINT4"}  # fmt: skip
_BITS = {"FLOAT": 32, "FLOAT16": 16, "BFLOAT16": 16, "INT8": 8, "UINT8": 8, "FLOAT8E4M3FN": 8, "INT4": 4, "UINT4": 4,
         "DOUBLE": 64, "INT32": 32, "INT64": 64, "FLOAT8E5M2": 8}  # fmt: skip


def inspect_file(path: Path) -> Inspection:
    """Parameters and precision from an ONNX graph's initializers."""
    try:
        import onnx
    except ImportError:
        raise InspectError(path, "the onnx package is missing: pip install 'accelplan[inspect]'") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise InspectError(path, f"not a valid ONNX file: {type(e).__name__}: {e}") from None
    by_type: Counter[str] = Counter()
    bits = 0
    inits = list(model.graph.initializer)
    for t in inits:
        n = math.prod(t.dims)
        name = onnx.TensorProto.DataType.Name(t.data_type)
        by_type[_DISPLAY.get(name, name)] += n
        bits += n * _BITS.get(name, 0)
    total = sum(by_type.values())
    if total == 0:
        raise InspectError(path, "the graph has no initializers (weights): nothing to count")
    external = sum(1 for t in inits if t.data_location == onnx.TensorProto.EXTERNAL)
    notes = ["ONNX carries no transformer architecture: sizing uses the parameter count"]
    if external:
        notes.append(f"{external} initializers keep their data in external files (not read)")
    return Inspection(
        path=str(path),
        format="onnx",
        parameter_count=total,
        precision=by_type.most_common(1)[0][0],
        bits_per_weight=bits / total,
        params_by_dtype=dict(by_type),
        tensor_count=len(inits),
        notes=notes,
    )
