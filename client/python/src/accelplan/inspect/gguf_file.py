"""GGUF files (llama.cpp) through the ``gguf`` package's reader.

GGUFReader memory-maps the file and parses its metadata and tensor table;
tensor data stay on disk. Bits per weight count each type's block scales
(Q4_K: 144 bytes per 256 weights = 4.5 bits).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from accelplan.inspect.result import InspectError, Inspection
from accelplan.v1 import models_pb2


def _gguf(path: Path) -> Any:
    try:
        import gguf
    except ImportError:
        raise InspectError(path, "the gguf package is missing: pip install 'accelplan[inspect]'") from None
    return gguf


def _reader(path: Path) -> Any:
    gguf = _gguf(path)
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise InspectError(path, f"not a GGUF file (magic {magic!r}, expected b'GGUF')")
    try:
        return gguf.GGUFReader(str(path), "r")
    except Exception as e:  # truncated tables, unknown tensor types, bad strings
        raise InspectError(path, f"not a valid GGUF file: {type(e).__name__}: {e}") from None


def _field(reader: Any, key: str) -> Any:
    f = reader.get_field(key)
    if f is None:
        return None
    try:
        return f.contents()
    except Exception:  # an odd value type: treat as absent
        return None


def inspect_file(path: Path) -> Inspection:
    """Parameters, quantization and architecture from a GGUF file's header."""
    gguf = _gguf(path)
    reader = _reader(path)
    by_type: Counter[str] = Counter()
    bits = 0.0
    names = set()
    for t in reader.tensors:
        qtype = gguf.GGMLQuantizationType(int(t.tensor_type))
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        n = int(t.n_elements)
        by_type[qtype.name] += n
        bits += n * size * 8 / block
        names.add(t.name)
    total = sum(by_type.values())
    if total == 0:
        raise InspectError(path, "no tensors")
    file_type = _field(reader, "general.file_type")
    precision = by_type.most_common(1)[0][0]
    notes = []
    if file_type is not None:
        try:
            precision = gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
        except ValueError:
            notes.append(f"general.file_type {file_type} is not a type this gguf package knows")
    arch = _architecture(reader, names)
    if arch is None:
        notes.append("no llama.cpp architecture metadata: sizing uses the parameter count")
    return Inspection(
        path=str(path),
        format="gguf",
        parameter_count=total,
        precision=precision,
        bits_per_weight=bits / total,
        params_by_dtype=dict(by_type),
        tensor_count=len(reader.tensors),
        architecture=arch,
        notes=notes,
    )


def _architecture(reader: Any, names: set[str]) -> models_pb2.ModelArchitecture | None:
    arch = _field(reader, "general.architecture")
    if not arch:
        return None

    def n(key: str) -> int:
        v = _field(reader, f"{arch}.{key}")
        if isinstance(v, list):  # per-layer arrays (e.g. head_count_kv): the largest
            v = max(v) if v else 0
        return int(v) if isinstance(v, int | float) and v > 0 else 0

    layers, hidden, heads = n("block_count"), n("embedding_length"), n("attention.head_count")
    if not (layers and hidden and heads):
        return None
    tokens = _field(reader, "tokenizer.ggml.tokens")
    vocab = n("vocab_size") or (len(tokens) if isinstance(tokens, list) else 0)
    return models_pb2.ModelArchitecture(
        model_type=str(arch),
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=n("attention.head_count_kv"),
        head_dim=n("attention.key_length"),
        intermediate_size=n("feed_forward_length") or n("expert_feed_forward_length"),
        vocab_size=vocab,
        tie_word_embeddings="output.weight" not in names,
        num_local_experts=n("expert_count"),
        num_experts_per_tok=n("expert_used_count"),
        max_position_embeddings=n("context_length"),
    )
