"""Whether the engine's hot modules (in ``filters/``) run compiled (mypyc) or as plain
Python. (Here rather than in ``filters/``, which does no I/O: these look at files.)

``setup.py`` compiles :data:`COMPILED_MODULES` with mypyc when the package is installed
(unless ``SCRUBGATE_PURE_PYTHON=1`` or the machine has no C compiler). The compiled
modules are the same source and behave the same; they make the walk ~2x and the whole
scrub ~1.3x faster (``benchmarks/README.md``).

In a source checkout installed with ``pip install -e .`` the compiled modules sit next to
their source and Python imports them first, so an edit to the source would silently not
take effect: :func:`check_fresh` refuses to run such a stale build. The command line, the
test suite and the engine benchmark call it before anything else.
"""

from __future__ import annotations

import importlib.util
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Final, Literal

COMPILED_MODULES: Final = (
    "filters.walker",
    "filters.plan",
    "filters.selectors",
    "filters.sweep",
    "filters.detectors.scanner",
    "filters.detectors.json_spans",
    "filters.detectors.context",
    "filters.detectors.contact",
    "filters.detectors.credentials",
    "filters.detectors.financial",
    "filters.detectors.network",
    "filters.actions.generalize",
)
"""The modules ``setup.py`` compiles (the hot path of :meth:`filters.plan.Plan.scrub`)."""

EngineBuild = Literal["compiled", "python", "mixed"]

_SOURCE_TOLERANCE_SECONDS: Final = 2.0
"""A source newer than its compiled module by more than this was edited after the build."""
_ROOT: Final = Path(__file__).resolve().parent.parent
"""The directory holding the ``filters`` package (a source checkout, or site-packages)."""


class StaleBuildError(ImportError):
    """A compiled module is older than its source (a source checkout edited after
    ``pip install -e .``)."""


def engine_build() -> EngineBuild:
    """``compiled`` when every module of :data:`COMPILED_MODULES` is loaded from a
    compiled extension, ``python`` when none is, ``mixed`` otherwise."""
    compiled = sum(1 for name in COMPILED_MODULES if _extension_of(name) is not None)
    if compiled == len(COMPILED_MODULES):
        return "compiled"
    return "python" if compiled == 0 else "mixed"


def check_fresh(root: Path = _ROOT, modules: tuple[str, ...] = COMPILED_MODULES) -> None:
    """Raise :class:`StaleBuildError` when a compiled module of a source checkout (under
    ``root``) is older than its source. Installed packages (no ``pyproject.toml`` above
    them) are not checked: an installer writes the source and the extension together."""
    if not (root / "pyproject.toml").exists():
        return
    stale = stale_modules(root, modules)
    if stale:
        raise StaleBuildError(
            f"{', '.join(stale)}: the source changed after it was compiled; run "
            "`pip install -e .` again (or delete the compiled *.so files) to run the source"
        )


def stale_modules(root: Path, modules: tuple[str, ...] = COMPILED_MODULES) -> list[str]:
    """The ``modules`` under ``root`` (the directory holding the packages) whose compiled
    extension is older than their source."""
    stale: list[str] = []
    for name in modules:
        source = root.joinpath(*name.split(".")).with_suffix(".py")
        for suffix in EXTENSION_SUFFIXES:
            if _older(source.with_suffix(suffix), source):
                stale.append(name)
                break
    return stale


def _older(extension: Path, source: Path) -> bool:
    try:
        return source.stat().st_mtime > extension.stat().st_mtime + _SOURCE_TOLERANCE_SECONDS
    except OSError:  # no such extension (or source)
        return False


def _extension_of(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)
