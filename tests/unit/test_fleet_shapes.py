"""Remembered fleet shapes: the fleet's bytes found by a wire scan, the same shape as counting the devices."""

from __future__ import annotations

from accelplan.v1 import hardware_pb2, models_pb2, planning_pb2
from accelplan_server.rpc import cost
from accelplan_server.runtime.fleet_shapes import FleetShapes, field_bytes

H = hardware_pb2
FLEET = planning_pb2.PlanShardingRequest.DESCRIPTOR.fields_by_name["fleet"].number


def _request(chips: int, devices: int = 3) -> planning_pb2.PlanShardingRequest:
    return planning_pb2.PlanShardingRequest(
        model=models_pb2.ModelSpec(parameter_count=7_000_000_000),
        fleet=H.Fleet(
            accelerators=[H.Accelerator(type=H.ACCELERATOR_TYPE_TPU, tpu_chip_count=chips) for _ in range(devices)]
        ),
    )


def test_the_fleet_bytes_are_found_in_the_request() -> None:
    r = _request(8)
    assert field_bytes(r.SerializeToString(), FLEET) == r.fleet.SerializeToString()
    assert field_bytes(planning_pb2.PlanShardingRequest().SerializeToString(), FLEET) is None


def test_a_fleet_sent_twice_is_not_trusted_to_the_scan() -> None:
    r = _request(8)
    twice = r.SerializeToString() + _request(4).fleet.SerializeToString()  # not a valid framing: odd bytes
    assert field_bytes(twice, FLEET) is None or field_bytes(twice, FLEET) == r.fleet.SerializeToString()
    merged = r.SerializeToString() + bytes([FLEET << 3 | 2]) + bytes([len(b := r.fleet.SerializeToString())]) + b
    assert field_bytes(merged, FLEET) is None


def test_shapes_match_counting_and_are_remembered() -> None:
    shapes = FleetShapes(capacity=2)
    for chips in (1, 4, 16384, 4):
        r = _request(chips)
        assert shapes.shape(r.SerializeToString(), FLEET, r) == cost.fleet_chips(r.fleet)
    assert len(shapes._shapes) == 2
    assert field_bytes(b"\xff", FLEET) is None  # truncated varint
