"""Bytes of weights at a quantization level, including group-wise scale and zero-point overhead.

Quantized formats (GPTQ/AWQ INT4, INT8, FP8) quantize the transformer blocks'
linear layers; embeddings, LM head, norms and routers stay at 16 bits. A
group of ``group_size`` weights carries one FP16 scale and, unless the scheme
is symmetric, one zero point at the weight's own width. FP8 (E4M3) uses
per-tensor scales, which are negligible. FP32 and 16-bit levels store every
parameter at their width.
"""

from __future__ import annotations

from typing import NamedTuple

from accelplan_server.core.model.architecture import ParameterCounts
from accelplan_server.core.quantization import Quantization

DEFAULT_GROUP_SIZE = 128
SCALE_BITS = 16
UNQUANTIZED_BITS = 16
"""Width of the tensors a quantized checkpoint keeps unquantized (embeddings, head, norms)."""

GROUPED = (Quantization.INT8, Quantization.INT4)


class WeightFormat(NamedTuple):
    """How weights are stored."""

    quantization: Quantization
    group_size: int = DEFAULT_GROUP_SIZE
    symmetric: bool = False
    quantize_embeddings: bool = False
    """GGUF-style: the embedding table and LM head are quantized like the linear layers."""

    @property
    def quantizes_linear_only(self) -> bool:
        """Sub-16-bit formats quantize only the blocks' linear layers."""
        return self.quantization.bits < 16

    def linear_bits_per_weight(self) -> float:
        """Average bits per linear-layer weight, overhead included."""
        bits = self.quantization.bits
        if self.quantization in GROUPED:
            zero = 0 if self.symmetric else bits
            return bits + (SCALE_BITS + zero) / self.group_size
        return float(bits)

    def describe(self) -> str:
        """One sentence for the response's assumptions."""
        q = self.quantization
        if q in GROUPED:
            zero = "no zero point" if self.symmetric else f"a {q.bits}-bit zero point"
            where = (
                "on every matrix, embeddings and LM head included (GGUF-style); norms stay 16-bit"
                if self.quantize_embeddings
                else "on the blocks' linear layers; embeddings, LM head and norms stay 16-bit"
            )
            return (
                f"{q.display_name} weights in groups of {self.group_size} with an FP16 scale and {zero} "
                f"({self.linear_bits_per_weight():.4g} bits per weight) {where}."
            )
        if self.quantizes_linear_only:
            return (
                f"{q.display_name} weights on the blocks' linear layers (per-tensor scales); "
                "embeddings, LM head and norms stay 16-bit."
            )
        return f"All weights at {q.bits} bits ({q.display_name})."


def weights_bytes(counts: ParameterCounts, fmt: WeightFormat) -> int:
    """Bytes the weights occupy, rounded up."""
    q = fmt.quantization
    if not fmt.quantizes_linear_only:
        return counts.total * q.bits // 8
    linear = counts.linear + (counts.embedding + counts.lm_head if fmt.quantize_embeddings else 0)
    other = counts.total - linear
    bits = q.bits
    if q in GROUPED:
        zero = 0 if fmt.symmetric else bits
        linear_bits_num = linear * (bits * fmt.group_size + SCALE_BITS + zero)
        linear_bytes = -(-linear_bits_num // (8 * fmt.group_size))
    else:
        linear_bytes = -(-linear * bits // 8)
    return linear_bytes + other * UNQUANTIZED_BITS // 8


def bytes_read_per_token(counts: ParameterCounts, fmt: WeightFormat, tied: bool) -> int:
    """Weight bytes one decode step reads at batch 1.

    Every active weight except the input embedding table (only one row of it is
    looked up), unless the table doubles as the LM head.
    """
    embedding, lm_head, attention, mlp_dense, _, shared_experts, router, norms, active_experts = counts[:9]
    active = ParameterCounts(
        embedding if tied else 0,
        lm_head,
        attention,
        mlp_dense,
        active_experts,  # experts: only the routed top-k are read
        shared_experts,
        router,
        norms,
        active_experts,
    )
    return weights_bytes(active, fmt)
