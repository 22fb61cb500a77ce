"""What inspecting a model file found, and the ModelSpec built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from accelplan.v1 import models_pb2


class InspectError(Exception):
    """A file that cannot be inspected; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass
class Inspection:
    """A model's size, precision and (where the files carry it) architecture, read from headers."""

    path: str
    format: str  # safetensors, safetensors-sharded, gguf, onnx
    parameter_count: int
    precision: str  # BF16, FP16, FP8 E4M3, INT4 (GPTQ, group 128), Q4_K_M, ...
    bits_per_weight: float  # weight bits over all parameters (GGUF: block scales included)
    params_by_dtype: dict[str, int] = field(default_factory=dict)
    tensor_count: int = 0
    group_size: int = 0  # GPTQ/AWQ quantization group; 0 when not group-quantized
    architecture: models_pb2.ModelArchitecture | None = None
    hf_config_json: str = ""  # config.json beside the weights, verbatim
    notes: list[str] = field(default_factory=list)

    def spec(self) -> models_pb2.ModelSpec:
        """The ModelSpec to send: config.json when present, else the architecture, else the exact count."""
        if self.hf_config_json:
            return models_pb2.ModelSpec(hf_config_json=self.hf_config_json)
        if self.architecture is not None:
            return models_pb2.ModelSpec(architecture=self.architecture)
        return models_pb2.ModelSpec(parameter_count=self.parameter_count)

    def text(self) -> str:
        """Readable lines."""
        lines = [
            f"file:        {self.path}",
            f"format:      {self.format} ({self.tensor_count:,} tensors)",
            f"parameters:  {self.parameter_count:,}",
            f"precision:   {self.precision} ({self.bits_per_weight:.2f} bits per weight)",
        ]
        if len(self.params_by_dtype) > 1:
            parts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.params_by_dtype.items(), key=lambda kv: -kv[1]))
            lines.append(f"by dtype:    {parts}")
        a = self.architecture
        if a is not None:
            lines.append(
                f"architecture: {a.model_type or '?'}: {a.num_hidden_layers} layers, hidden {a.hidden_size}, "
                f"{a.num_attention_heads} heads ({a.num_key_value_heads or a.num_attention_heads} KV), "
                f"MLP {a.intermediate_size}, vocab {a.vocab_size}, context {a.max_position_embeddings}"
            )
        elif not self.hf_config_json:
            lines.append("architecture: not in the file; sizing uses the parameter count")
        if self.hf_config_json:
            lines.append("config.json: beside the weights; --model @PATH sends it")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
