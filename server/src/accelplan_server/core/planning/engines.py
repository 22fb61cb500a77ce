"""Serving engines and the efficiency figures of each that the roofline uses.

Engines differ where a fixed cost or a kernel choice decides the time: llama.cpp
processes a prompt in micro-batches of 512 tokens and pays a larger per-layer cost
per step than the server engines, which capture CUDA graphs and batch the whole
prompt; on Apple GPUs llama.cpp runs its Metal kernels, with figures of their own.
The figures below were fitted on the ``fit`` rows of tests/validation
(tests/validation/fit.py prints them); the ``held_out`` rows were chosen before
fitting and are reported apart in bench/RESULTS.md.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Engine(enum.IntEnum):
    """accelplan.v1.Engine: the serving engine a speed estimate is for."""

    UNSPECIFIED = 0
    VLLM = 1
    LLAMA_CPP = 2
    TENSORRT_LLM = 3
    SGLANG = 4


class EngineProfile(NamedTuple):
    """How fast an engine's kernels and scheduler run, as shares of a device's peaks and fixed costs."""

    name: str
    decode_overhead_seconds_per_layer: float
    """Fixed cost per layer per decode step (kernel launches, synchronisation) that does not shrink with the model."""
    prefill_mfu_max: float
    """Share of dense peak FLOPS a prompt's matrix multiplies reach when they are large."""
    prefill_half_tokens: int
    """Tokens per matrix multiply at which the prefill MFU is half its maximum (small GEMMs are inefficient)."""
    prefill_overhead_seconds_per_layer: float
    """Fixed cost per layer per prompt micro-batch."""
    prefill_micro_batch_tokens: int
    """Tokens per prompt micro-batch (llama.cpp's n_ubatch); 0 means the whole prompt at once."""
    kv_read_efficiency: float
    """KV-cache (paged attention) reads relative to the weight-read bandwidth utilisation."""
    prefill_attention_efficiency: float
    """Prompt attention (score and value) FLOPs run at this share of the matrix-multiply MFU (without flash
    attention they are slower)."""
    fp16_accumulate: bool
    """16-bit matrix multiplies accumulate in FP16 (llama.cpp's cuBLAS path), which GeForce cards run at twice
    the FP32-accumulate peak the catalogue lists."""
    source: str
    """Where the figures come from."""


FIT_SOURCE = "fitted on the 'fit' rows of tests/validation (tests/validation/fit.py)"

LLAMA_CPP = EngineProfile(
    "llama.cpp",
    decode_overhead_seconds_per_layer=100e-6,
    prefill_mfu_max=0.5,
    prefill_half_tokens=26,  # weakly determined: the llama-bench rows all run 512-token micro-batches
    prefill_overhead_seconds_per_layer=9.33e-6,
    prefill_micro_batch_tokens=512,
    kv_read_efficiency=0.437,  # attention without flash attention (llama-bench's default) reads the KV slowly
    prefill_attention_efficiency=0.202,
    fp16_accumulate=True,
    source=f"llama-bench pp/tg rows (May 2024), {FIT_SOURCE}; n_ubatch 512 is llama.cpp's default",
)
SERVER = EngineProfile(
    "vLLM",
    decode_overhead_seconds_per_layer=77.3e-6,
    prefill_mfu_max=0.5,
    prefill_half_tokens=80,
    prefill_overhead_seconds_per_layer=37.6e-6,
    prefill_micro_batch_tokens=0,
    kv_read_efficiency=1.0,
    prefill_attention_efficiency=0.541,
    fp16_accumulate=False,
    source=f"NIM/TensorRT-LLM rows, {FIT_SOURCE}",
)

LLAMA_CPP_METAL = LLAMA_CPP._replace(
    name="llama.cpp (Metal)",
    decode_overhead_seconds_per_layer=201e-6,
    prefill_mfu_max=0.8,
    prefill_half_tokens=61,
    prefill_overhead_seconds_per_layer=0.349e-6,
    kv_read_efficiency=0.155,
    prefill_attention_efficiency=0.559,
    fp16_accumulate=False,
    source=f"llama-bench pp/tg rows on M2 Ultra and M3 Max (May 2024), {FIT_SOURCE}",
)
"""llama.cpp's Metal backend (Apple GPUs): its own kernels, fitted on the Apple rows."""

PROFILES: dict[Engine, EngineProfile] = {
    Engine.UNSPECIFIED: SERVER,
    Engine.VLLM: SERVER,
    Engine.TENSORRT_LLM: SERVER._replace(name="TensorRT-LLM"),
    Engine.SGLANG: SERVER._replace(name="SGLang"),
    Engine.LLAMA_CPP: LLAMA_CPP,
}
"""Each engine's figures. UNSPECIFIED means a server engine (vLLM's figures): accelplan plans serving fleets.
vLLM, TensorRT-LLM and SGLang share one profile: the published rows do not separate them by more than the
model's error."""


METAL_PROFILES: dict[Engine, EngineProfile] = {Engine.LLAMA_CPP: LLAMA_CPP_METAL}
"""Engines whose Apple-GPU (Metal) kernels have figures of their own."""


def profile(engine: Engine, metal: bool = False) -> EngineProfile:
    """The engine's figures (UNSPECIFIED: the server-engine default), on Apple GPUs its Metal figures."""
    return (METAL_PROFILES.get(engine) if metal else None) or PROFILES[engine]
