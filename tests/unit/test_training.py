import pytest

from accelplan_server.core.memory.hwaccel_training import TrainingMethod as M
from accelplan_server.core.memory.hwaccel_training import TrainingTarget as T
from accelplan_server.core.memory.hwaccel_training import estimate_training_memory, multipliers

P = 7_000_000_000  # base = 14e9 bytes
BASE = 14_000_000_000


@pytest.mark.parametrize(
    ("method", "target", "bits", "expected"),
    [
        (M.FULL_FINE_TUNE, T.GPU, 4, (1, 2, 1)),
        (M.LORA, T.GPU, 4, (1, 0.1, 0.1)),
        (M.QLORA, T.GPU, 4, (0.25, 0.1, 0.025)),
        (M.QLORA, T.GPU, 8, (0.5, 0.1, 0.05)),
        (M.PREFIX, T.GPU, 4, (1, 0.05, 0.05)),
        (M.DPO, T.GPU, 4, (2, 2, 1.5)),
        (M.RLHF, T.GPU, 4, (2, 2, 1.5)),
        (M.DISTILLATION, T.GPU, 4, (1.5, 1, 0.8)),
        (M.FULL_FINE_TUNE, T.CPU, 4, (1, 2, 1)),
        (M.FULL_FINE_TUNE, T.TPU, 4, (1, 1.5, 0.8)),
        (M.LORA, T.TPU, 4, (1, 0.15, 0.12)),
        (M.QLORA, T.TPU, 4, (0.4, 0.15, 0.048)),
        (M.QLORA, T.TPU, 8, (0.6, 0.15, 0.072)),
        (M.PREFIX, T.TPU, 4, (1, 0.05, 0.05)),
        (M.DPO, T.TPU, 4, (2, 1.5, 1.2)),
        (M.RLHF, T.TPU, 4, (2, 1.5, 1.2)),
        (M.DISTILLATION, T.TPU, 4, (1.5, 0.8, 0.6)),
        (M.FULL_FINE_TUNE, T.GAUDI, 4, (1, 1.5, 0.9)),
        (M.LORA, T.GAUDI, 4, (1, 0.12, 0.12)),
        (M.QLORA, T.GAUDI, 4, (0.35, 0.12, 0.042)),
        (M.QLORA, T.GAUDI, 5, (0.55, 0.12, 0.066)),
        (M.PREFIX, T.GAUDI, 4, (1, 0.05, 0.06)),
        (M.DPO, T.GAUDI, 4, (2, 1.5, 1.3)),
        (M.RLHF, T.GAUDI, 4, (2, 1.5, 1.3)),
        (M.DISTILLATION, T.GAUDI, 4, (1.5, 0.9, 0.7)),
    ],
)
def test_ai_hwaccel_multipliers(method: M, target: T, bits: int, expected: tuple[float, float, float]) -> None:
    got = multipliers(method, target, bits)
    assert [float(x) for x in got] == pytest.approx(expected, rel=1e-12)
    e = estimate_training_memory(P, method, target, bits)
    assert e.model_bytes == round(BASE * expected[0])
    assert e.optimizer_bytes == round(BASE * expected[1])
    assert e.activation_bytes == round(BASE * expected[2])
    assert e.total_bytes == e.model_bytes + e.optimizer_bytes + e.activation_bytes


def test_lora_7b_on_gpu_is_1_2x_base() -> None:
    # ai-hwaccel's worked example: 7000M LoRA on GPU -> 13.0385 GiB * 1.2
    e = estimate_training_memory(P, M.LORA)
    assert e.total_bytes == 16_800_000_000
    assert e.total_bytes / 2**30 == pytest.approx(15.646, abs=1e-3)


def test_components_round_down_exactly() -> None:
    e = estimate_training_memory(3, M.LORA)  # base 6 bytes * 0.1 = 0.6 -> 0
    assert (e.model_bytes, e.optimizer_bytes, e.activation_bytes) == (6, 0, 0)
