import pytest

from accelplan.fleetspec import parse_count, parse_fleet, parse_size
from accelplan.v1 import hardware_pb2 as hw


def test_sizes() -> None:
    assert parse_size("80GiB") == 80 * 2**30
    assert parse_size("24GB") == 24 * 10**9
    assert parse_size("1.5TiB") == int(1.5 * 2**40)
    assert parse_size("1024") == 1024
    with pytest.raises(ValueError):
        parse_size("eighty")


def test_counts() -> None:
    assert parse_count("70B") == 70_000_000_000
    assert parse_count("7000M") == 7_000_000_000
    assert parse_count("8030261248") == 8_030_261_248
    assert parse_count("9007199254740993") == 9_007_199_254_740_993  # exact above 2**53
    assert parse_count("1e9") == 10**9


def test_fleet() -> None:
    f = parse_fleet("2xcuda:80GiB@1, tpu-v5p:4chips, gaudi3", ["nvswitch:900"])
    assert [a.type for a in f.accelerators] == [hw.ACCELERATOR_TYPE_CUDA_GPU] * 2 + [
        hw.ACCELERATOR_TYPE_TPU,
        hw.ACCELERATOR_TYPE_GAUDI,
    ]
    assert [a.device_id for a in f.accelerators] == [0, 1, 2, 3]
    assert f.accelerators[0].numa_node == 1 and f.accelerators[0].memory_bytes == 80 * 2**30
    assert f.accelerators[2].tpu_chip_count == 4 and f.accelerators[2].tpu_version == hw.TPU_VERSION_V5P
    assert f.accelerators[3].gaudi_generation == hw.GAUDI_GENERATION_GAUDI3
    assert f.interconnects[0].kind == hw.INTERCONNECT_KIND_NVSWITCH


@pytest.mark.parametrize("spec", ["cuda@@1", "8x", "cuda:lots", "5000xcuda:1GiB"])
def test_bad_fleet(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fleet(spec)
