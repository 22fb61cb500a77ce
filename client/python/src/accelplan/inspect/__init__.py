"""Reading model files' headers: exact parameter count, precision and architecture, as a ModelSpec.

Client side only: nothing in the server imports this package. The readers are
the formats' own libraries (the ``accelplan[inspect]`` extra).
"""

from __future__ import annotations

from pathlib import Path

from accelplan.inspect import gguf_file, onnx_file, safetensors_file
from accelplan.inspect.result import InspectError, Inspection

__all__ = ["InspectError", "Inspection", "inspect_path"]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


def inspect_path(path: str | Path) -> Inspection:
    """Inspect a .safetensors, model.safetensors.index.json, .gguf or .onnx file, or a folder holding one."""
    p = Path(path)
    if not p.exists():
        raise InspectError(p, "no such file or directory")
    if p.is_dir():
        return inspect_path(_pick(p))
    name = p.name.lower()
    if name.endswith(".safetensors.index.json"):
        return safetensors_file.inspect_index(p)
    if name.endswith(".safetensors"):
        return safetensors_file.inspect_file(p)
    if name.endswith(".gguf"):
        return gguf_file.inspect_file(p)
    if name.endswith(".onnx"):
        return onnx_file.inspect_file(p)
    _refuse_pickle(p)
    raise InspectError(p, "unknown format: expected .safetensors, .safetensors.index.json, .gguf or .onnx")


def _pick(folder: Path) -> Path:
    for pattern in ("*.safetensors.index.json", "*.safetensors", "*.gguf", "*.onnx"):
        found = sorted(folder.glob(pattern))
        if pattern == "*.safetensors" and len(found) > 1:
            raise InspectError(folder, f"{len(found)} .safetensors files but no model.safetensors.index.json")
        if found:
            return found[0]
    pickles = sorted(f for f in folder.iterdir() if f.name.lower().endswith(PICKLE_SUFFIXES))
    if pickles:
        _refuse_pickle(pickles[0])
    raise InspectError(folder, "holds no .safetensors, .gguf or .onnx file")


def _refuse_pickle(p: Path) -> None:
    with p.open("rb") as f:
        head = f.read(4)
    zipped = head == b"PK\x03\x04"  # torch.save's zip container, with data.pkl inside
    pickled = head[:1] == b"\x80"  # a bare pickle stream (protocol 2+)
    if zipped or pickled or p.name.lower().endswith(PICKLE_SUFFIXES):
        raise InspectError(
            p,
            "a PyTorch pickle checkpoint: refused, not unpickled (unpickling runs arbitrary code from the file). "
            "Convert it to safetensors, or pass the parameter count with --params",
        )
