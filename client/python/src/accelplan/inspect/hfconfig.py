"""config.json beside Hugging Face weights: the architecture and the quantization_config."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelplan.inspect.result import InspectError
from accelplan.v1 import models_pb2

MAX_CONFIG_BYTES = 64 * 1024  # what ModelSpec.hf_config_json accepts


@dataclass(frozen=True)
class Quantization:
    """config.json's quantization_config, the parts that change how tensors are counted."""

    method: str  # gptq, awq, fp8, compressed-tensors, bitsandbytes, ...
    bits: int
    group_size: int


def load(path: Path) -> tuple[str, dict[str, Any]] | None:
    """(text, parsed) of config.json, None when absent."""
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InspectError(path, f"not JSON ({e})") from None
    if not isinstance(data, dict):
        raise InspectError(path, "not a JSON object")
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise InspectError(path, f"larger than {MAX_CONFIG_BYTES} bytes, the most a ModelSpec carries")
    return text, data


def quantization(config: dict[str, Any]) -> Quantization | None:
    """The quantization_config, if any (also under text_config for multimodal configs)."""
    q = config.get("quantization_config") or config.get("text_config", {}).get("quantization_config")
    if not isinstance(q, dict):
        return None
    return Quantization(
        method=str(q.get("quant_method", "")).lower(),
        bits=int(q.get("bits") or q.get("w_bit") or 0),
        group_size=int(q.get("group_size") or q.get("q_group_size") or 0),
    )


def architecture(config: dict[str, Any]) -> models_pb2.ModelArchitecture | None:
    """The decoder fields config.json carries (for display; the server reads the text itself)."""
    c = config.get("text_config", config)
    if not all(k in c for k in ("num_hidden_layers", "hidden_size", "num_attention_heads")):
        return None

    def n(key: str) -> int:
        v = c.get(key)
        return int(v) if isinstance(v, int | float) and v > 0 else 0

    return models_pb2.ModelArchitecture(
        num_hidden_layers=n("num_hidden_layers"),
        hidden_size=n("hidden_size"),
        num_attention_heads=n("num_attention_heads"),
        num_key_value_heads=n("num_key_value_heads"),
        head_dim=n("head_dim"),
        intermediate_size=n("intermediate_size"),
        vocab_size=n("vocab_size"),
        tie_word_embeddings=bool(c.get("tie_word_embeddings", False)),
        max_position_embeddings=n("max_position_embeddings"),
        model_type=str(c.get("model_type", "")),
    )
