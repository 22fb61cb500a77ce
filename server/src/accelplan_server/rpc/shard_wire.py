"""A plan's shards encoded straight to protobuf wire bytes (ShardingPlan.shards).

Building 1,000 ModelShard messages field by field costs milliseconds in
Python. The parts of a shard that depend only on the fleet (shard number,
accelerator, accelerator index) are encoded once per fleet lineup and kept
with it; a plan adds its layer ranges and memory, and the response message
parses the lot in C (``ShardingPlan.MergeFromString``). The result is the same
message the field-by-field build gives; tests/unit/test_shard_wire.py checks it.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain, repeat
from typing import NamedTuple

from accelplan.v1 import hardware_pb2, planning_pb2
from accelplan_server.core.errors import invalid
from accelplan_server.core.hardware import accelerators as hw
from accelplan_server.core.planning.sharding import Layout, Lineup, Plan
from accelplan_server.rpc import convert, limits

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


_SHARD_FIELDS_BYTES = 40
"""A shard's encoding beyond its accelerator, at most: tags, lengths, shard_id, layers, memory and index."""
MAX_SHARD_BYTES = _SHARD_FIELDS_BYTES + 2 * 4 * limits.MAX_STRING_LENGTH + 256
"""A shard's encoding at most: name and sku of up to MAX_STRING_LENGTH characters of up to 4 UTF-8 bytes,
and the Accelerator's numbers (fewer than 20 fields of at most 11 bytes each)."""


def _accelerator_bytes(
    index: int, device: hw.Accelerator, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None
) -> int:
    """Bytes of the Accelerator a shard on ``device`` (fleet position ``index``) echoes, as _echoed builds it."""
    if index >= 0 and fleet_msg is not None:
        sent = fleet_msg.accelerators[index]
        if sent.memory_bytes and not sent.sku:
            return sent.ByteSize()
    return convert.accelerator_message(fleet.accelerators[index] if index >= 0 else device).ByteSize()


def _lineup_size_bound(lineup: Lineup, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> int:
    sizes: dict[int, int] = {}
    firsts: dict[int, hw.Accelerator] = {}
    for index, device in zip(lineup.indices, lineup.devices, strict=True):
        firsts.setdefault(index, device)
    for index, device in firsts.items():
        sizes[index] = _SHARD_FIELDS_BYTES + _accelerator_bytes(index, device, fleet, fleet_msg)
    return sum(sizes[i] * n for i, n in Counter(lineup.indices).items())


def shards_size_bound(plan: Plan, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> int:
    """An upper bound on the bytes of ``encoded_shards(plan, ...)``, worked out without encoding any shard.

    Like the encoding, it is kept with the plan's lineup (it depends only on the lineup and its fleet).
    """
    lineup = plan.lineup
    if len(lineup) * MAX_SHARD_BYTES <= limits.MAX_PAGE_BYTES:
        return len(lineup) * MAX_SHARD_BYTES  # fits whatever the devices: nothing to look at
    return lineup.memo(("shard size", fleet_msg is None), lambda: _lineup_size_bound(lineup, fleet, fleet_msg))


def check_shards_fit(plan: Plan, fleet: hw.Fleet, fleet_msg: hardware_pb2.Fleet | None) -> None:
    """InvalidArgument when the plan's shards would not fit in a response a client accepts (before encoding them)."""
    size = shards_size_bound(plan, fleet, fleet_msg)
    if size > limits.MAX_PAGE_BYTES:
        raise invalid(
            "fleet.accelerators",
            f"the plan has {len(plan.lineup)} shards, each naming its accelerator as sent: about "
            f"{size / 2**20:.1f} MiB, more than the {limits.MAX_RESPONSE_BYTES >> 20} MiB a response may carry; "
            "shorten the accelerators' names or plan on fewer, larger devices",
        )


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
