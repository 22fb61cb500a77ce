"""Types of the compiled ``_verdicts`` (see _verdicts.pyx)."""

from collections.abc import Mapping, Sequence

def encode_verdicts(
    order: Sequence[int], keys: Sequence[object], heads: Sequence[bytes], tail_of: Mapping[object, bytes]
) -> bytes: ...
