"""Tests of filters.actions.replace."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.actions.replace import Replace


@pytest.mark.parametrize(
    ("replacement", "value"),
    [
        ("[redacted]", "alice@example.com"),
        ("[redacted]", 42),
        ("[redacted]", None),
        (0, "anything"),
        (1.5, True),
        (None, "gone"),
        (False, 3.25),
        ("", ""),
    ],
    ids=["str", "str-for-int", "str-for-none", "int", "float", "none", "bool", "empty-str"],
)
def test_replace(replacement: object, value: object) -> None:
    out = Replace(replacement).apply(value)  # type: ignore[arg-type]
    assert out == replacement
    assert type(out) is type(replacement)


@pytest.mark.parametrize(
    ("replacement", "error"),
    [
        ([], TypeError),
        ({"a": 1}, TypeError),
        (b"bytes", TypeError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
    ],
    ids=["list", "dict", "bytes", "nan", "inf"],
)
def test_rejects_non_json_scalars(replacement: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Replace(replacement)  # type: ignore[arg-type]


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()))
def test_always_the_constant(value: object) -> None:
    assert Replace("[x]").apply(value) == "[x]"  # type: ignore[arg-type]
