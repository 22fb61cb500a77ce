"""The C allocator's thresholds, set so that request-sized buffers are reused instead of mapped afresh.

A RankNodes request of 5,000 nodes (0.8 MB) and its answer (1 MB), or an extender body of 500 full
Nodes (3.4 MB), are allocated, copied and freed on every call. glibc serves a block above its mmap
threshold (128 KiB at first) with a new mapping and gives heap above its trim threshold back to the
kernel, so each call faults its pages in again: on the benchmark VM a third of `accelplan serve`'s CPU
per such RankNodes call and ~15% of the extender's per filter (bench/RESULTS.md). Raising both
thresholds to the largest buffer a request can make keeps freed blocks in the heap for the next call,
at the cost of holding up to twice that much freed memory (16 MiB for `accelplan serve`, 64 MiB for
the extender). Other C libraries (musl, macOS) are left as they are.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
"""mallopt parameter: free heap above this many bytes at the top is returned to the kernel (glibc malloc.h)."""

M_MMAP_THRESHOLD = -3
"""mallopt parameter: blocks of at least this many bytes get their own mapping (glibc malloc.h)."""

MAX_MMAP_THRESHOLD_BYTES = 32 << 20
"""glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX); mallopt refuses more."""


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33+)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _glibc() -> ctypes.CDLL | None:
    """The C library of this process when it is glibc (musl also has a mallopt, which does nothing)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
    except (OSError, AttributeError):
        return None
    return libc


def reuse_large_blocks(largest_bytes: int) -> bool:
    """Serve blocks up to ``largest_bytes`` (at most 32 MiB) from the heap and keep up to twice that freed.

    True when glibc accepted both settings; False (nothing changed) elsewhere. Settings hold for the
    whole process and for processes it forks.
    """
    if largest_bytes <= 0:
        raise ValueError("largest_bytes must be positive")
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mmap_bytes = min(largest_bytes, MAX_MMAP_THRESHOLD_BYTES)
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * mmap_bytes))


def mapped_blocks() -> int | None:
    """How many blocks glibc currently serves with their own mapping; None without glibc 2.33+."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    mallinfo2 = libc.mallinfo2
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().hblks)
