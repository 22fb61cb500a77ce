"""Types of the compiled ``_rank_order`` (see _rank_order.pyx)."""

from collections.abc import Mapping, Sequence

def order(keys: Sequence[object], sort_value: Mapping[object, int], infeasible: int) -> tuple[list[int], int]: ...
