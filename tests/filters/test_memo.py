"""filters/memo.py: a bounded memo in front of a pure action gives the action's results."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.actions import GeneralizeUrl, KeyedHasher
from filters.memo import DEFAULT_MAX_CHARS, Memo

HASHER = KeyedHasher(b"memo-test-hash-key-0123456789abc")


class CountingAction:
    """``repr`` of the value, counting the calls (``repr`` tells 1, 1.0 and True apart)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.calls.append(value)
        return repr(value)


def test_a_repeated_string_is_computed_once():
    action = CountingAction()
    memo = Memo(action, entries=8)
    assert [memo("a"), memo("b"), memo("a"), memo("a")] == ["'a'", "'b'", "'a'", "'a'"]
    assert action.calls == ["a", "b"]
    assert len(memo) == 2


def test_it_is_a_field_rule_transform_that_ignores_the_outcome():
    memo = Memo(HASHER.hash_value, entries=8)
    assert memo("user-1", object()) == HASHER.hash_value("user-1")


def test_equal_keys_of_different_types_never_share_a_result():
    action = CountingAction()
    memo = Memo(action, entries=8)
    assert [memo(1), memo(1.0), memo(True), memo("1"), memo(None)] == [
        "1",
        "1.0",
        "True",
        "'1'",
        "None",
    ]
    assert [memo(1), memo(True)] == ["1", "True"]
    assert len(memo) == 1  # only the string is remembered


def test_a_none_result_is_remembered_too():
    calls: list[str] = []

    def to_none(value: str) -> None:
        calls.append(value)

    memo = Memo(to_none, entries=4)
    assert memo("x") is None
    assert memo("x") is None
    assert calls == ["x"]


def test_it_never_holds_more_than_its_entries():
    action = CountingAction()
    memo = Memo(action, entries=3)
    for number in range(10):
        assert memo(f"value-{number}") == repr(f"value-{number}")
        assert len(memo) <= 3
    assert memo("value-9") == "'value-9'"
    assert action.calls.count("value-9") == 1


def test_long_strings_are_not_remembered():
    action = CountingAction()
    memo = Memo(action, entries=4)
    long = "x" * (DEFAULT_MAX_CHARS + 1)
    assert memo(long) == repr(long)
    assert memo(long) == repr(long)
    assert len(memo) == 0
    assert len(action.calls) == 2
    short = "y" * DEFAULT_MAX_CHARS
    memo(short)
    assert len(memo) == 1


@pytest.mark.parametrize(("entries", "max_chars"), [(0, 10), (-1, 10), (4, -1)])
def test_bounds_are_checked(entries, max_chars):
    with pytest.raises(ValueError, match="at least one entry"):
        Memo(repr, entries=entries, max_chars=max_chars)


VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["https://a.example/p?utm_source=x&q=1", "u-1", "", "192.0.2.7"]),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)


@given(values=st.lists(VALUES, max_size=40), entries=st.integers(min_value=1, max_value=5))
def test_property_a_memo_gives_exactly_the_actions_results(values, entries):
    generalize = GeneralizeUrl(allow_params=frozenset({"utm_source"}))
    for action in (HASHER.hash_value, generalize.apply):
        memo = Memo(action, entries=entries, max_chars=20)
        for value in values + values[::-1]:
            result = memo(value)
            expected = action(value)
            assert result == expected
            assert type(result) is type(expected)
        assert len(memo) <= entries


def test_apply_is_the_memo_without_the_outcome():
    action = CountingAction()
    memo = Memo(action, entries=8)
    assert [memo.apply("a"), memo("a", None), memo.apply(1), memo.apply(True)] == [
        "'a'",
        "'a'",
        "1",
        "True",
    ]
    assert action.calls == ["a", 1, True]
    assert len(memo) == 1
