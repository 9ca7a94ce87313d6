"""proxy/build.py: which build of the engine runs, and the guard against stale ones."""

from __future__ import annotations

import ast
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from proxy import build
from proxy.build import COMPILED_MODULES, StaleBuildError, engine_build, stale_modules

REPO = Path(__file__).resolve().parents[2]
SUFFIX = EXTENSION_SUFFIXES[0]


def test_the_engine_runs_the_build_the_test_command_installed():
    # scripts/test sets this: "compiled" unless SCRUBGATE_PURE_PYTHON=1 asked for none.
    expected = os.environ.get("SCRUBGATE_EXPECT_ENGINE")
    if expected is None:
        pytest.skip("SCRUBGATE_EXPECT_ENGINE is not set (scripts/test sets it)")
    assert engine_build() == expected


def test_setup_compiles_exactly_the_modules_the_build_module_names():
    tree = ast.parse((REPO / "setup.py").read_text())
    (listed,) = [
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "COMPILED_MODULES" for t in node.targets)
    ]
    assert [path.removesuffix(".py").replace("/", ".") for path in listed] == list(COMPILED_MODULES)


def test_every_compiled_module_exists_as_source():
    for name in COMPILED_MODULES:
        assert REPO.joinpath(*name.split(".")).with_suffix(".py").is_file(), name


def _module(root: Path, source_age: float, extension_age: float | None) -> None:
    """filters/walker.py aged ``source_age`` seconds, its extension ``extension_age``."""
    package = root / "filters"
    package.mkdir(exist_ok=True)
    source = package / "walker.py"
    source.write_text("")
    now = source.stat().st_mtime
    os.utime(source, (now - source_age, now - source_age))
    if extension_age is not None:
        extension = package / f"walker{SUFFIX}"
        extension.write_bytes(b"")
        os.utime(extension, (now - extension_age, now - extension_age))


@pytest.mark.parametrize(
    ("source_age", "extension_age", "stale"),
    [
        (100.0, 50.0, False),  # compiled after the last edit
        (50.0, 100.0, True),  # edited after it was compiled
        (50.0, 51.0, False),  # within the tolerance: written by one install
        (50.0, None, False),  # pure Python: nothing to be stale
    ],
)
def test_a_module_is_stale_when_its_source_is_newer_than_its_extension(
    tmp_path, source_age, extension_age, stale
):
    _module(tmp_path, source_age, extension_age)
    expected = ["filters.walker"] if stale else []
    assert stale_modules(tmp_path, ("filters.walker",)) == expected


def test_a_missing_source_is_not_stale(tmp_path):
    assert stale_modules(tmp_path, ("filters.walker",)) == []


def test_a_stale_source_checkout_refuses_to_import(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    _module(tmp_path, 50.0, 100.0)
    with pytest.raises(StaleBuildError, match=r"filters\.walker: the source changed"):
        build.check_fresh(tmp_path, ("filters.walker",))


def test_an_installed_package_is_not_checked(tmp_path):
    _module(tmp_path, 50.0, 100.0)  # no pyproject.toml above the package
    build.check_fresh(tmp_path, ("filters.walker",))


def test_this_checkout_is_fresh():
    build.check_fresh()
