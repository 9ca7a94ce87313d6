"""Tests of filters.actions.truncate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.actions.truncate import Truncate


@pytest.mark.parametrize(
    ("truncate", "value", "expected"),
    [
        (Truncate(5), "abcdefgh", "abcd…"),
        (Truncate(5), "abcde", "abcde"),
        (Truncate(5), "abcdef", "abcd…"),
        (Truncate(5), "", ""),
        (Truncate(8, suffix="..."), "abcdefghij", "abcde..."),
        (Truncate(3, suffix=""), "abcdef", "abc"),
        (Truncate(1, suffix=""), "abcdef", "a"),
        (Truncate(4), "🙂🙂🙂🙂🙂", "🙂🙂🙂…"),
        (Truncate(4), "ab\ud83d\ude42cd", "ab…"),
        (Truncate(4, suffix=""), "abc\ud83d\ude42", "abc"),
        (Truncate(4, suffix=""), "ab\ud83d\ude42", "ab\ud83d\ude42"),
        (Truncate(4), 123456789, 123456789),
        (Truncate(4), 1.5, 1.5),
        (Truncate(4), None, None),
        (Truncate(4), True, True),
    ],
    ids=[
        "cut",
        "exact-fit",
        "one-over",
        "empty",
        "ascii-suffix",
        "no-suffix",
        "max1-no-suffix",
        "astral-code-points",
        "surrogate-pair-not-split",
        "surrogate-pair-not-split-no-suffix",
        "surrogate-pair-fits",
        "int-unchanged",
        "float-unchanged",
        "none-unchanged",
        "bool-unchanged",
    ],
)
def test_truncate(truncate: Truncate, value: object, expected: object) -> None:
    assert truncate.apply(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_length": 0}, ValueError),
        ({"max_length": -3}, ValueError),
        ({"max_length": 1}, ValueError),
        ({"max_length": 3, "suffix": "..."}, ValueError),
        ({"max_length": "10"}, ValueError),
        ({"max_length": 10, "suffix": None}, TypeError),
    ],
    ids=["zero", "negative", "suffix-fills-all", "suffix-equal", "str-length", "none-suffix"],
)
def test_invalid_parameters(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        Truncate(**kwargs)  # type: ignore[arg-type]


truncates = st.builds(
    Truncate, max_length=st.integers(6, 40), suffix=st.sampled_from(["…", "...", "", "[cut]"])
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())


@given(truncates, scalars)
def test_never_crashes(truncate: Truncate, value: object) -> None:
    out = truncate.apply(value)  # type: ignore[arg-type]
    if not isinstance(value, str):
        assert out is value


@given(truncates, st.text())
def test_length_bound_prefix_and_idempotence(truncate: Truncate, text: str) -> None:
    out = truncate.truncate_text(text)
    assert len(out) <= truncate.max_length
    if len(text) <= truncate.max_length:
        assert out == text
    else:
        assert out.endswith(truncate.suffix)
        kept = out[: len(out) - len(truncate.suffix)]
        assert text.startswith(kept)
        assert len(kept) >= truncate.max_length - len(truncate.suffix) - 1
    assert truncate.truncate_text(out) == out


@given(st.integers(2, 20), st.lists(st.sampled_from(["a", "\ud83d\ude42"]), min_size=1))
def test_surrogate_pairs_never_split(max_length: int, parts: list[str]) -> None:
    # Pairs of surrogate code points, as "surrogatepass" decoding produces them.
    text = "".join(parts)
    for suffix in ("", "…"):
        out = Truncate(max_length, suffix=suffix).truncate_text(text)
        kept = out[: len(out) - len(suffix)] if len(out) < len(text) else out
        assert not kept.endswith("\ud83d")
