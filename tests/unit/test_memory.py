import pytest

from accelplan_server.core.memory.hwaccel_serving import estimate_memory
from accelplan_server.core.quantization import Quantization as Q


def test_70b_bf16_matches_ai_hwaccel() -> None:
    e = estimate_memory(70_000_000_000, Q.BFLOAT16)
    assert e.weights_bytes == 140_000_000_000
    assert e.overhead_bytes == 28_000_000_000
    assert e.total_bytes == 168_000_000_000


@pytest.mark.parametrize(
    ("params", "level", "weights", "total"),
    [
        (7_000_000_000, Q.FLOAT16, 14_000_000_000, 16_800_000_000),
        (1_000_000_000, Q.INT4, 500_000_000, 600_000_000),
        (8_030_261_248, Q.NONE, 32_121_044_992, 32_121_044_992 + 6_424_208_998),
        (3, Q.INT4, 1, 1),  # floor(3*4/8) = 1, overhead floor(1/5) = 0
        (7, Q.INT8, 7, 8),  # 7 + floor(7/5)
    ],
)
def test_integer_arithmetic(params: int, level: Q, weights: int, total: int) -> None:
    e = estimate_memory(params, level)
    assert (e.weights_bytes, e.total_bytes) == (weights, total)


def test_huge_counts_stay_exact() -> None:
    # Above 2**53: a float would round; Python ints do not.
    params = 2**53 + 1
    assert estimate_memory(params, Q.INT4).weights_bytes == (2**53 + 1) * 4 // 8


def test_assumptions_are_stated() -> None:
    text = " ".join(estimate_memory(1, Q.INT8).assumptions)
    assert "20%" in text and "8 bits" in text
