"""runtime.allocator against glibc's default behaviour, each in a fresh process.

A fresh process maps a 4 MiB block on its own (glibc's first mmap threshold is 128 KiB); after
``reuse_large_blocks`` the same block comes from the heap, and freeing it keeps the heap.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from accelplan_server.runtime import allocator

PROBE = """
import sys
from accelplan_server.runtime import allocator
if sys.argv[1] == "tuned":
    assert allocator.reuse_large_blocks(8 << 20)
before = allocator.mapped_blocks()
block = bytearray(4 << 20)
print(allocator.mapped_blocks() - before)
"""


def _new_mappings(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(allocator.mapped_blocks() is None, reason="needs glibc 2.33+ (mallinfo2)")
def test_large_blocks_come_from_the_heap_once_tuned() -> None:
    assert _new_mappings("plain") == 1
    assert _new_mappings("tuned") == 0


def test_bad_size_is_refused() -> None:
    with pytest.raises(ValueError):
        allocator.reuse_large_blocks(0)
