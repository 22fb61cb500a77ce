"""Process-level limits and ties: the open-file limit, and children that die with their parent."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger("accelplan.server")

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when its parent thread exits (Linux)."""


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each connection holds a descriptor); returns (soft, hard).

    The soft limit is often 1,024 while the hard one is far higher: a few
    hundred idle connections would otherwise lock every client out.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, e)
    return soft, hard


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux; no-op elsewhere).

    Call it in the child right after fork; if the parent died before the call,
    the child exits at once (its parent is then init or a subreaper).
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as e:
        log.warning("prctl unavailable: %s", e)
    if parent == 1 or os.getppid() != parent:
        os._exit(1)
