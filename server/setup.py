"""The compiled fast paths (Cython): optional, so an install without a C compiler still works (plain Python paths).

Each compiled module sits beside the Python module that calls it and has a plain-Python reference
it is tested against (tests/unit/test_compiled.py). Everything else is in pyproject.toml.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = {
    "accelplan_server.core.scheduling._label_keys": "src/accelplan_server/core/scheduling/_label_keys.pyx",
    "accelplan_server.core.scheduling._rank_order": "src/accelplan_server/core/scheduling/_rank_order.pyx",
    "accelplan_server.rpc._verdicts": "src/accelplan_server/rpc/_verdicts.pyx",
}

setup(
    ext_modules=cythonize(
        [Extension(name, [source], optional=True) for name, source in MODULES.items()],
        compiler_directives={"language_level": "3"},
    )
)
