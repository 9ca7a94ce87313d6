"""docs/ and the READMEs: every relative link and every repository path in backticks that
names a deploy or docs file points at something that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.support import REPO

PAGES = sorted([*(REPO / "docs").glob("*.md"), REPO / "README.md", REPO / "deploy" / "README.md"])
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#+\s+(.*)$", re.MULTILINE)
_MENTIONED = re.compile(r"`((?:deploy|docs|scripts)/[A-Za-z0-9_./-]+)`")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {
        re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")
        for heading in _HEADING.findall(page.read_text())
    }


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_relative_links_resolve(page):
    for target in _LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: broken link {target}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: no heading for {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_mentioned_repository_paths_exist(page):
    for mentioned in _MENTIONED.findall(page.read_text()):
        assert (REPO / mentioned.rstrip("/")).exists(), f"{page.name}: {mentioned} does not exist"
