import pytest

from accelplan.fleetspec import parse_count, parse_fleet, parse_size
from accelplan.v1 import hardware_pb2 as hw


def test_sizes() -> None:
    assert parse_size("80GiB") == 80 * 2**30
    assert parse_size("24GB") == 24 * 10**9
    assert parse_size("1.5TiB") == int(1.5 * 2**40)
    assert parse_size("1024B") == 1024
    with pytest.raises(ValueError):
        parse_size("eighty")


@pytest.mark.parametrize("text", ["24", "80", "1024"])
def test_a_bare_size_is_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=f"{text} what\\? Say e.g. 80GiB, 24GB"):
        parse_size(text)


def test_a_small_bare_count_is_refused() -> None:
    with pytest.raises(ValueError, match="7 parameters\\? Say 7B"):
        parse_count("7")
    assert parse_count("8030261248") == 8_030_261_248  # an exact count is unambiguous


@pytest.mark.parametrize(
    ("spec", "forms"),
    [
        ("cuda:80", "cuda:80GiB or cuda:80GB"),
        ("tpu:4", "tpu:4chips (chips) or tpu:4GiB"),
        ("2xrocm:192", "rocm:192GiB"),
    ],
)
def test_a_bare_device_amount_is_refused(spec: str, forms: str) -> None:
    with pytest.raises(ValueError, match="what\\? Say") as e:
        parse_fleet(spec)
    assert forms in str(e.value)


def test_links_take_gb_per_second_with_or_without_the_unit() -> None:
    for link in ("nvlink:900", "nvlink:900GB/s", "NVLink:900 GB/s", "nvlink:900gbps"):
        f = parse_fleet("8xh100-sxm", [link])
        assert f.interconnects[0].bandwidth_gigabytes_per_second == 900
    bare = parse_fleet("8xh100-sxm", ["nvlink"])
    assert bare.interconnects[0].kind == hw.INTERCONNECT_KIND_NVLINK
    assert bare.interconnects[0].bandwidth_gigabytes_per_second == 0  # the CLI fills the catalogue figure
    with pytest.raises(ValueError, match="give GB/s"):
        parse_fleet("8xh100-sxm", ["nvlink:fast"])


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
