"""A plan's shards encoded straight to protobuf wire bytes (ShardingPlan.shards).

Building 1,000 ModelShard messages field by field costs milliseconds in
Python. The parts of a shard that depend only on the fleet (shard number,
accelerator, accelerator index) are encoded once per fleet lineup and kept
with it; a plan adds its layer ranges and memory, and the response message
parses the lot in C (``ShardingPlan.MergeFromString``). The result is the same
message the field-by-field build gives; tests/unit/test_shard_wire.py checks it.
"""

from __future__ import annotations

from itertools import chain, repeat
from typing import NamedTuple

from accelplan.v1 import hardware_pb2, planning_pb2
from accelplan_server.core.hardware import accelerators as hw
from accelplan_server.core.planning.sharding import Layout, Lineup, Plan
from accelplan_server.rpc import convert

_ModelShard = planning_pb2.ModelShard

# Wire tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
_SHARDS = b"\x1a"  # ShardingPlan.shards = 3
_SHARD_ID = b"\x08"  # ModelShard.shard_id = 1
_ACCELERATOR = b"\x2a"  # ModelShard.accelerator = 5
_ACCELERATOR_INDEX = b"\x30"  # ModelShard.accelerator_index = 6 (optional: written even when 0)


_ONE_BYTE = tuple(bytes((n,)) for n in range(0x80))


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative integer."""
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _layout_fields(layout: Layout) -> bytes:
    """first_layer, last_layer and memory_bytes, encoded (in C; zeros left out, as proto3 does)."""
    return _ModelShard(
        first_layer=layout.first_layer, last_layer=layout.last_layer, memory_bytes=layout.memory_bytes
    ).SerializeToString()


def _echoed(device: hw.Accelerator, index: int, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> bytes:
    """The Accelerator a shard names: the fleet device as sent, or rebuilt where validation completed it."""
    if index < 0:
        return convert.accelerator_message(device).SerializeToString()
    sent = fleet_msg.accelerators[index] if fleet_msg is not None else None
    if sent is None or not sent.memory_bytes or sent.sku:
        # Memory from the generation's default or figures from the sku: echo what was worked out.
        return convert.accelerator_message(fleet.accelerators[index]).SerializeToString()
    return sent.SerializeToString()


def _device_fields(lineup: Lineup, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> tuple[bytes, ...]:
    """Shard n's shard_id, accelerator and accelerator_index, encoded, for each n."""
    out = []
    for n, (device, index) in enumerate(zip(lineup.devices, lineup.indices, strict=True)):
        accelerator = _echoed(device, index, fleet, fleet_msg)
        fields = (_SHARD_ID + varint(n) if n else b"") + _ACCELERATOR + varint(len(accelerator)) + accelerator
        if index >= 0:
            fields += _ACCELERATOR_INDEX + varint(index)
        out.append(fields)
    return tuple(out)


class _LineupWire(NamedTuple):
    """What a lineup's shards encode to apart from their layouts (kept with the lineup)."""

    fields: tuple[bytes, ...]
    """Shard n's shard_id, accelerator and accelerator_index."""
    lengths: tuple[int, ...]
    distinct_lengths: frozenset[int]

    @staticmethod
    def of(lineup: Lineup, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> _LineupWire:
        fields = _device_fields(lineup, fleet, fleet_msg)
        lengths = tuple(map(len, fields))
        return _LineupWire(fields, lengths, frozenset(lengths))


def encoded_shards(plan: Plan, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> bytes:
    """ShardingPlan.shards for ``plan``, as wire bytes.

    ``fleet_msg`` must be the message ``fleet`` was validated from (None to
    rebuild every device from ``fleet``): what is encoded from it is kept with
    the plan's lineup, which belongs to that fleet.
    """
    lineup = plan.lineup
    wire = lineup.memo(("shard wire", fleet_msg is None), lambda: _LineupWire.of(lineup, fleet, fleet_msg))
    if len(plan.layouts) == 1:
        # Every shard has the same layers and memory: one encoding, then joined in C.
        common = _layout_fields(plan.layouts[0])
        headers = {n: _SHARDS + varint(n + len(common)) for n in wire.distinct_lengths}
        return b"".join(chain.from_iterable(zip(map(headers.__getitem__, wire.lengths), repeat(common), wire.fields)))
    parts = []
    for layout, device in zip(plan.layouts, wire.fields, strict=True):
        body = _layout_fields(layout) + device
        parts.append(_SHARDS + varint(len(body)) + body)
    return b"".join(parts)
