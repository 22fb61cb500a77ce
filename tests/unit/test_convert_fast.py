"""convert's fast path for well-formed accelerators gives exactly what the full check gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from accelplan.v1 import hardware_pb2
from accelplan_server.rpc import convert, limits

H = hardware_pb2

accelerators = st.builds(
    H.Accelerator,
    type=st.integers(0, 20),
    device_id=st.integers(0, 2**32 - 1),
    memory_bytes=st.one_of(st.just(0), st.integers(1, limits.MAX_MEMORY_BYTES + 1)),
    unavailable=st.booleans(),
    tpu_chip_count=st.one_of(st.integers(0, 8), st.just(limits.MAX_TPU_CHIPS + 1)),
    tpu_version=st.integers(0, 4),
    gaudi_generation=st.integers(0, 3),
    neuron_chip_type=st.integers(0, 3),
    neuron_core_count=st.integers(0, 64),
    numa_node=st.one_of(st.none(), st.integers(0, 7)),
    memory_bandwidth_gigabytes_per_second=st.one_of(st.floats(allow_nan=True), st.floats(0, 1e4)),
    name=st.one_of(st.text(max_size=8), st.just("x" * (limits.MAX_STRING_LENGTH + 1))),
)


@settings(max_examples=300, deadline=None)
@given(accelerators)
def test_fast_path_matches_the_full_check(msg: H.Accelerator) -> None:
    fast = convert._accelerator_fast(msg)
    bad = convert.Violations()
    full = convert.accelerator(msg, "a", bad)
    if fast is not None:
        assert not bad.items
        assert fast == full


@settings(max_examples=100, deadline=None)
@given(st.lists(accelerators, max_size=6))
def test_fleet_is_the_same_whether_cached_or_not(devices: list[H.Accelerator]) -> None:
    msg = H.Fleet(accelerators=devices)
    first_bad, second_bad = convert.Violations(), convert.Violations()
    first = convert.fleet(msg, "fleet", first_bad, required=False)
    second = convert.fleet(msg, "fleet", second_bad, required=False)  # now from the device cache
    assert first == second
    assert [(v.field, v.description) for v in first_bad.items] == [(v.field, v.description) for v in second_bad.items]
