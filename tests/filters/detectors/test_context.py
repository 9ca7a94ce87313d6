"""Escape-aware boundary checks used by validators."""

from __future__ import annotations

import pytest

from filters.detectors.context import (
    continues_after,
    continues_before,
    dotted_continues_after,
    dotted_continues_before,
    escape_span,
    framed,
    is_escape_tail,
)


@pytest.mark.parametrize(
    ("buffer", "index", "span"),
    [
        pytest.param(b"a\\nb", 2, (1, 3), id="letter-of-escape"),
        pytest.param(b"a\\nb", 1, (1, 3), id="backslash-of-escape"),
        pytest.param(b"a\\nb", 3, None, id="after-escape"),
        pytest.param(b"a\\\\nb", 3, None, id="n-after-escaped-backslash"),
        pytest.param(b"a\\\\nb", 2, (1, 3), id="second-backslash-of-pair"),
        pytest.param(b"x\\u001fy", 5, (1, 7), id="hex-digit-of-unicode"),
        pytest.param(b"x\\u001fy", 7, None, id="after-unicode"),
        pytest.param(b"plain", 2, None, id="no-backslash"),
    ],
)
def test_escape_span(buffer, index, span):
    assert escape_span(buffer, index) == span


def test_is_escape_tail():
    assert is_escape_tail(b"\\njohn", 1)
    assert not is_escape_tail(b"\\njohn", 0)
    assert not is_escape_tail(b"\\\\njohn", 2)


def test_continues_before_ignores_escapes_and_percent_escapes():
    assert continues_before(b"xAKIA", 1)
    assert not continues_before(b"\\nAKIA", 2)
    assert not continues_before(b"%3DAKIA", 3)
    assert not continues_before(b" AKIA", 1)
    assert not continues_before(b"AKIA", 0)


def test_continues_after():
    assert continues_after(b"abc", 1)
    assert not continues_after(b"ab ", 2)
    assert not continues_after(b"ab", 2)


def test_dotted_runs():
    assert dotted_continues_before(b"1.2.3.4", 2)
    assert not dotted_continues_before(b"v.2", 2)
    assert dotted_continues_after(b"1.2.3.4.5", 7)
    assert not dotted_continues_after(b"1.2.3.4.", 7)


def test_framed():
    assert framed(b"ab", trail=b"[^a]") == b"(?s:.)(?:ab)[^a]"
    assert framed(b"ab", trail=b".", lead=b"x") == b"x(?:ab)."
