import pytest

from accelplan_server.core.errors import InvalidArgument
from accelplan_server.core.quantization import Quantization as Q
from accelplan_server.core.quantization import from_bits, from_name


@pytest.mark.parametrize(
    ("level", "bits", "factor", "display"),
    [
        (Q.NONE, 32, 1.0, "FP32"),
        (Q.FLOAT16, 16, 2.0, "FP16"),
        (Q.BFLOAT16, 16, 2.0, "BF16"),
        (Q.INT8, 8, 4.0, "INT8"),
        (Q.INT4, 4, 8.0, "INT4"),
        (Q.FP8, 8, 4.0, "FP8"),
    ],
)
def test_level_facts(level: Q, bits: int, factor: float, display: str) -> None:
    assert level.bits == bits
    assert level.memory_reduction_factor == factor
    assert level.display_name == display


def test_enum_numbers_match_the_proto() -> None:
    from accelplan.v1 import quantization_pb2 as pb

    for q in Q:
        assert pb.QuantizationLevel.Name(q.value) == f"QUANTIZATION_LEVEL_{q.name}"


@pytest.mark.parametrize(("bits", "level"), [(32, Q.NONE), (16, Q.FLOAT16), (8, Q.INT8), (4, Q.INT4)])
def test_from_bits(bits: int, level: Q) -> None:
    assert from_bits(bits) is level


@pytest.mark.parametrize("bits", [0, 1, 2, 3, 5, 6, 12, 24, 64, 2**32 - 1])
def test_from_bits_rejects_other_widths(bits: int) -> None:
    with pytest.raises(InvalidArgument) as e:
        from_bits(bits)
    assert e.value.violations[0].field == "bits"


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("fp32", Q.NONE),
        ("FP32", Q.NONE),
        ("none", Q.NONE),
        ("QUANTIZATION_LEVEL_NONE", Q.NONE),
        ("fp16", Q.FLOAT16),
        ("Float16", Q.FLOAT16),
        ("quantization_level_float16", Q.FLOAT16),
        ("bf16", Q.BFLOAT16),
        ("BFLOAT16", Q.BFLOAT16),
        ("int8", Q.INT8),
        ("INT8", Q.INT8),
        ("QUANTIZATION_LEVEL_INT8", Q.INT8),
        ("int4", Q.INT4),
        (" Int4 ", Q.INT4),
    ],
)
def test_from_name(name: str, level: Q) -> None:
    assert from_name(name) is level


@pytest.mark.parametrize("name", ["", "fp6", "int2", "QUANTIZATION_LEVEL_UNSPECIFIED", "x" * 1000])
def test_from_name_rejects_unknown(name: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        from_name(name)
    assert e.value.violations[0].field == "name"
