"""Tests of filters.actions.mask."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.actions.mask import Mask


@pytest.mark.parametrize(
    ("mask", "value", "expected"),
    [
        (Mask(), "4111111111111111", "************1111"),
        (Mask(), 4111111111111111, "************1111"),
        (Mask(), 4111111111111111.0, "************1111"),
        (Mask(), "12345", "*2345"),
        (Mask(), "1234", "****"),
        (Mask(), "12", "**"),
        (Mask(), "", ""),
        (Mask(), -12345, "**2345"),
        (Mask(), 1.25, "****"),
        (Mask(keep_last=0), "secret", "******"),
        (Mask(keep_last=0), 7, "*"),
        (Mask(keep_last=2, keep_first=2), "abcdefgh", "ab****gh"),
        (Mask(keep_last=2, keep_first=2), "abcd", "****"),
        (Mask(keep_last=2, keep_first=2), "abcde", "ab*de"),
        (Mask(keep_last=0, keep_first=3), "+4915112345678", "+49***********"),
        (Mask(char="#"), "ünïcödé🙂", "####ödé🙂"),
        (Mask(char="•"), "password", "••••word"),
    ],
    ids=[
        "card",
        "card-int",
        "card-float",
        "one-masked",
        "exactly-keep-fully-masked",
        "shorter-than-keep",
        "empty",
        "negative-int",
        "float-fully-masked",
        "keep-nothing",
        "keep-nothing-int",
        "both-ends",
        "both-ends-short",
        "both-ends-one-masked",
        "phone-prefix",
        "unicode",
        "unicode-char",
    ],
)
def test_mask(mask: Mask, value: object, expected: str) -> None:
    assert mask.apply(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, True, False], ids=["none", "true", "false"])
def test_none_and_bools_unchanged(value: bool | None) -> None:
    assert Mask().apply(value) is value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keep_last": -1},
        {"keep_first": -1},
        {"keep_last": 65},
        {"keep_last": 1.5},
        {"char": ""},
        {"char": "**"},
        {"char": 5},
    ],
    ids=["neg-last", "neg-first", "too-many", "float-keep", "empty-char", "two-chars", "int-char"],
)
def test_invalid_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Mask(**kwargs)  # type: ignore[arg-type]


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Mask().char = "#"  # type: ignore[misc]


masks = st.builds(
    Mask,
    keep_last=st.integers(0, 8),
    char=st.sampled_from(["*", "#", "x", "•"]),
    keep_first=st.integers(0, 8),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())


@given(masks, scalars)
def test_never_crashes(mask: Mask, value: object) -> None:
    out = mask.apply(value)  # type: ignore[arg-type]
    if value is None or isinstance(value, bool):
        assert out is value
    else:
        assert isinstance(out, str)


@given(masks, st.text())
def test_length_kept_and_ends_only(mask: Mask, text: str) -> None:
    out = mask.mask_text(text)
    assert len(out) == len(text)
    keep = mask.keep_first + mask.keep_last
    if len(text) <= keep:
        assert out == mask.char * len(text)
        return
    middle = out[mask.keep_first : len(out) - mask.keep_last]
    assert middle == mask.char * len(middle)
    assert out[: mask.keep_first] == text[: mask.keep_first]
    assert out[len(out) - mask.keep_last :] == text[len(text) - mask.keep_last :]


@given(masks, st.text(min_size=1))
def test_never_reveals_whole_value(mask: Mask, text: str) -> None:
    if text != mask.char * len(text):
        assert mask.mask_text(text) != text
