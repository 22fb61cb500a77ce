"""The compiled loops (server/setup.py, Cython) this install has, and a warning at start-up when some are missing.

An install without a C compiler still works: each loop has a plain-Python path with equal answers,
2-10x slower over thousands of nodes (bench/RESULTS.md, "compiled loops").
"""

from __future__ import annotations

import importlib.util
import logging

log = logging.getLogger("accelplan.server")

MODULES = (
    "accelplan_server.core.scheduling._label_keys",
    "accelplan_server.core.scheduling._rank_order",
    "accelplan_server.rpc._verdicts",
)
"""Every compiled module (tests/unit/test_compiled.py holds this to the .pyx sources)."""


def missing() -> list[str]:
    """The compiled modules this install lacks."""
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def warn_if_missing() -> None:
    """Log a warning naming the compiled modules this install lacks, if any."""
    lacking = missing()
    if lacking:
        log.warning(
            "installed without its compiled loops (%s): answers are the same, ranking thousands of nodes is "
            "2-10x slower; reinstall accelplan-server where a C compiler is present",
            ", ".join(name.rsplit(".", 1)[1] for name in lacking),
        )
