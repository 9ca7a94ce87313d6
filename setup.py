"""Build hook: compile the engine's hot modules with mypyc (see ``proxy/build.py``).

Everything else about the package is in pyproject.toml. The compiled modules are the same
Python source, turned into C extensions; ``SCRUBGATE_PURE_PYTHON=1`` at install time, or
a machine without a C compiler, gives the pure-Python package, which behaves the same,
only slower.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

COMPILED_MODULES = [
    "filters/walker.py",
    "filters/plan.py",
    "filters/selectors.py",
    "filters/sweep.py",
    "filters/detectors/scanner.py",
    "filters/detectors/json_spans.py",
    "filters/detectors/context.py",
    "filters/detectors/contact.py",
    "filters/detectors/credentials.py",
    "filters/detectors/financial.py",
    "filters/detectors/network.py",
    "filters/actions/generalize.py",
]
"""The engine's hot path; ``proxy.build.COMPILED_MODULES`` names the same modules."""


class OptionalBuildExt(build_ext):
    """Fall back to the pure-Python modules when the extensions cannot be built.

    The compiled modules share one library; a half-built set would fail at import, so on
    any failure every extension already built is removed again."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # any build failure means: stay pure Python
            for output in self.get_outputs():
                if os.path.exists(output):
                    os.remove(output)
            _warn(f"compiling the engine failed ({type(error).__name__}); installing pure Python")


def _warn(message: str) -> None:
    print(f"scrubgate: {message}", file=sys.stderr)


def _extensions() -> list[Extension]:
    if os.environ.get("SCRUBGATE_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed; installing pure Python")
        return []
    try:
        return mypycify(COMPILED_MODULES, opt_level="3")
    except (Exception, SystemExit) as error:  # mypyc reports type errors by exiting
        # scripts/test runs mypy and checks that the engine is compiled, so CI still fails.
        _warn(f"mypyc cannot compile the engine ({type(error).__name__}); installing pure Python")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
