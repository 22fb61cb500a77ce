"""What a request will cost, in CPU seconds, estimated from the request alone before any work starts.

One model serves two decisions: the deadline guard (rpc/deadlines.py) refuses a
call whose deadline is shorter than its estimate, and the serving process
(runtime/) sends calls estimated at or above its heavy-lane threshold to a
separate process pool. The estimate is an upper bound for a fleet never seen
before: a repeated fleet is prepared once and then costs far less.

Where the time goes (bench/lane_cost.py measures it; per-unit figures rounded
up from its output on the 2-core benchmark machine, see bench/RESULTS.md
"Hostile load"):

* preparing a fleet: per listed device (validation, specs, bandwidth) and per
  chip (a TPU device of N chips is N ranks to place): about 7 us per device
  and 5 us per chip — 4,096 GPUs take ~29 ms, one 16,384-chip TPU slice ~76 ms,
  4,096 four-chip TPUs ~118 ms;
* a plan's shards: at most one per chip, about 4.5 us each in the placement,
  speed model and response (a 405B model over 16,384 chips: 16,384 shards,
  ~71 ms). A pipeline over GPUs has at most one stage per layer, so a model of
  known depth bounds the shards by its layers on GPU fleets.

Batch size and context length do not add work: the memory, capacity and
performance formulas are closed-form in them (one multiplication each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from accelplan_server.core.scheduling.devices import AUTO_ORDER
from accelplan_server.core.scheduling.right_size import DEFAULT_MAX_DEVICES
from accelplan_server.core.scheduling.sizing import MAX_SEARCHED_DEVICES, candidate_counts
from accelplan_server.rpc import limits

BASE_SECONDS = 0.0005
"""What any request needs beyond the fleet (parse, model profile, response)."""
PER_DEVICE_SECONDS = 0.000008
"""Preparing one listed device of a fleet not seen before."""
PER_CHIP_SECONDS = 0.000005
"""Preparing one chip of a fleet not seen before (a device without chips counts as one)."""
PER_SHARD_SECONDS = 0.0000045
"""Placing, timing and writing out one shard of a plan."""
PLAN_METHODS = frozenset({"PlanSharding", "SuggestQuantization"})
"""Methods that build a plan (SuggestQuantization may attach one)."""
FLEET_METHODS = frozenset(
    {"PlanSharding", "SuggestQuantization", "FilterAccelerators", "EstimateCapacity", "EstimatePerformance"}
)
"""Methods whose request carries a fleet, and so whose work grows with it."""

PER_SHAPE_SECONDS = 0.0004
"""Sizing one device shape not seen before for a RankNodes workload (every precision and replica size
the search tries, the roofline for those that fit): 0.27-0.34 ms a shape when 1,000-10,000 nodes are
all different shapes (bench/RESULTS.md, "RankNodes: many shapes go to the heavy lane"). RankNodes is
priced as it runs, once its nodes are read and their shapes known (rpc/scheduler.py)."""

PER_RIGHT_SIZE_REPLICA_SECONDS = 0.000008
"""RightSize: sizing one replica size of one sku at one precision (memory, then the roofline if it fits)."""
PER_RIGHT_SIZE_DEVICE_SECONDS = 0.0000015
"""RightSize: what each device of such a replica adds (the arrangement and roofline grow with them).
With the one above, the whole catalogue (45 skus) at every precision with a speed target is priced at
56 ms up to 64 devices, 33 up to 32, 20 up to 16 and 13 up to 8; the slowest of 5 models took 49, 18,
15 and 9 ms (bench/RESULTS.md, "RightSize priced, and every long sizing bounded where it runs")."""

LayersOf = Callable[[Any], int | None]
"""The number of layers of a request's ModelSpec, or None when unknown (a bare parameter count)."""


def fleet_chips(fleet: Any) -> tuple[int, int, bool]:
    """(devices, chips, any TPU) of a Fleet message, within the caps (rpc/limits.py).

    A device without a chip count is one chip. Past the caps the request is
    refused by validation before any planning, so it costs no more than at them.
    """
    devices = len(fleet.accelerators)
    chips = 0
    tpu = False
    for a in fleet.accelerators:
        n = a.tpu_chip_count
        chips += min(n, limits.MAX_TPU_CHIPS) if n > 1 else 1
        tpu = tpu or n > 1
    chips = min(chips, max(limits.MAX_FLEET_TPU_CHIPS, min(devices, limits.MAX_FLEET_ACCELERATORS)))
    return min(devices, limits.MAX_FLEET_ACCELERATORS), chips, tpu


FleetShape = tuple[int, int, bool]
"""(devices, chips, any TPU), as ``fleet_chips`` returns."""


def estimate_seconds(
    method: str, request: Any, layers_of: LayersOf | None = None, shape: FleetShape | None = None
) -> float:
    """Upper-bound CPU seconds ``request`` to ``method`` (a bare method name) needs.

    ``shape`` is ``fleet_chips(request.fleet)`` when the caller already knows it
    (counting chips walks every device: ~0.2 ms for 1,024 of them).
    """
    if method not in FLEET_METHODS:
        return BASE_SECONDS
    devices, chips, tpu = shape if shape is not None else fleet_chips(request.fleet)
    seconds = BASE_SECONDS + PER_DEVICE_SECONDS * devices + PER_CHIP_SECONDS * chips
    if method in PLAN_METHODS:
        shards = chips
        layers = layers_of(request.model) if layers_of is not None and request.HasField("model") else None
        if layers and not tpu:
            shards = min(chips, layers)  # a GPU pipeline has at most one stage per layer
        seconds += PER_SHARD_SECONDS * shards
    return seconds


def right_size_seconds(request: Any, catalogue_skus: int) -> float:
    """Upper-bound CPU seconds of a RightSizeRequest over a catalogue of ``catalogue_skus`` accelerators.

    Every listed sku (all of them when none is listed) at every precision the workload leaves open,
    each replica size the search tries up to ``max_devices``.
    """
    skus = min(len(request.skus), catalogue_skus) or catalogue_skus
    counts = candidate_counts(min(request.max_devices or DEFAULT_MAX_DEVICES, MAX_SEARCHED_DEVICES))
    levels = 1 if request.workload.quantization else len(AUTO_ORDER)
    per_level = len(counts) * PER_RIGHT_SIZE_REPLICA_SECONDS + sum(counts) * PER_RIGHT_SIZE_DEVICE_SECONDS
    return BASE_SECONDS + skus * levels * per_level
