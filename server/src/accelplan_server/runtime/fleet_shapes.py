"""Remembered fleet shapes (devices, chips, any TPU) for the cost model, keyed by the fleet's wire bytes.

Counting a fleet's chips walks every device through the protobuf API, ~0.2 ms
for 1,024 devices: as much as a whole cheap call. Schedulers send the same
fleet again and again, so the shape is remembered under a hash of the fleet's
bytes, found in the raw request by a top-level wire scan (a few fields, each
skipped in O(1)) without touching the devices. The table is small (tuples of
three numbers) and bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from accelplan_server.rpc import cost

MAX_SHAPES = 4096
"""Fleets remembered (each entry: a hash and three numbers)."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def field_bytes(raw: bytes, number: int) -> bytes | None:
    """The bytes of length-delimited top-level field ``number`` in ``raw``; None if absent, repeated or odd."""
    found: bytes | None = None
    i = 0
    try:
        while i < len(raw):
            key, i = _varint(raw, i)
            kind = key & 7
            if kind == 0:
                _, i = _varint(raw, i)
            elif kind == 1:
                i += 8
            elif kind == 5:
                i += 4
            elif kind == 2:
                length, i = _varint(raw, i)
                if key >> 3 == number:
                    if found is not None:
                        return None  # a message field sent twice is merged: let the parsed message count it
                    found = raw[i : i + length]
                i += length
            else:
                return None
    except ValueError:
        return None
    return found


class FleetShapes:
    """A bounded LRU of fleet shapes by the hash of the fleet's wire bytes."""

    def __init__(self, capacity: int = MAX_SHAPES) -> None:
        self.capacity = capacity
        self._shapes: OrderedDict[int, cost.FleetShape] = OrderedDict()

    def shape(self, raw_request: bytes, fleet_field: int, request: Any) -> cost.FleetShape:
        """The shape of ``request.fleet``, remembered when its bytes can be found in ``raw_request``."""
        fleet = field_bytes(raw_request, fleet_field)
        if fleet is None:
            return cost.fleet_chips(request.fleet)
        key = hash(fleet)
        found = self._shapes.get(key)
        if found is not None:
            self._shapes.move_to_end(key)
            return found
        shape = cost.fleet_chips(request.fleet)
        self._shapes[key] = shape
        if len(self._shapes) > self.capacity:
            self._shapes.popitem(last=False)
        return shape
