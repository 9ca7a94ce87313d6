"""Where a span may be replaced inside canonical JSON."""

from __future__ import annotations

import orjson
import pytest

from filters.detectors.json_spans import JsonSpans, any_in_object_key


def place(document: object, needle: bytes, *, occurrence: int = 0) -> bytes | None:
    """Place the span of ``needle`` (its n-th occurrence) and return what it covers,
    quoted with ``<...>`` when the replacement would need quotes."""
    buffer = orjson.dumps(document)
    start = -1
    for _ in range(occurrence + 1):
        start = buffer.index(needle, start + 1)
    where = JsonSpans(buffer).place(start, start + len(needle))
    if where is None:
        return None
    low, high, quoted = where
    return b"<" + buffer[low:high] + b">" if quoted else buffer[low:high]


@pytest.mark.parametrize(
    ("document", "needle", "placed"),
    [
        pytest.param({"a": "xy@z"}, b"xy@z", b"xy@z", id="plain-string"),
        pytest.param({"a": "\nxy"}, b"nxy", b"xy", id="starts-on-escape-letter"),
        pytest.param({"a": "\u0001xy"}, b"u0001xy", b"xy", id="starts-in-unicode-escape"),
        pytest.param({"a": "\u0001xy"}, b"01xy", b"xy", id="starts-on-hex-digits"),
        pytest.param({"a": "xy\n"}, b"xy\\", b"xy", id="ends-on-backslash"),
        pytest.param({"a": "xy\u0001"}, b"xy\\u00", b"xy", id="ends-inside-unicode"),
        pytest.param({"a": "a\\nb"}, b"nb", b"nb", id="escaped-backslash-then-n"),
        pytest.param({"n": 4111111111111111}, b"4111111111111111", b"<4111111111111111>", id="num"),
        pytest.param({"n": -12.5e3}, b"12", b"<-12500.0>", id="grows-to-whole-number"),
        pytest.param([True], b"true", b"<true>", id="literal"),
        pytest.param({"s": "a:4111,b"}, b"4111", b"4111", id="number-shaped-in-string"),
        pytest.param({"s": "1.2.3.4"}, b"1.2.3.4", b"1.2.3.4", id="not-a-json-number"),
    ],
)
def test_place(document, needle, placed):
    assert place(document, needle) == placed


def test_structure_is_never_placed():
    assert place({"a": 1}, b":") is None
    assert place([1, 2], b",") is None


def test_span_running_past_a_string_is_cut_at_its_end():
    buffer = orjson.dumps({"a": "xy", "b": "z"})
    start = buffer.index(b"xy")
    assert JsonSpans(buffer).place(start, len(buffer)) == (start, start + 2, False)


def test_ambiguous_number_like_text_is_resolved_exactly():
    # The same bytes twice: once inside a string, once as a bare number.
    document = {"s": "k:4111111111111111,", "n": 4111111111111111}
    buffer = orjson.dumps(document)
    spans = JsonSpans(buffer)
    first = buffer.index(b"4111111111111111")
    second = buffer.index(b"4111111111111111", first + 1)
    assert spans.place(first, first + 16) == (first, first + 16, False)
    assert spans.place(second, second + 16) == (second, second + 16, True)


def test_quotes_after_backslash_runs_are_counted_exactly():
    document = {"a": 'x\\"', "b": "\\\\", "n": 4111111111111111}
    buffer = orjson.dumps(document)
    start = buffer.index(b"4111111111111111")
    assert JsonSpans(buffer).place(start, start + 16) == (start, start + 16, True)


@pytest.mark.parametrize(
    ("document", "needle", "is_key"),
    [
        ({"key": "value"}, b"ke", True),
        ({"key": "value"}, b"valu", False),
        ({"a": {'k"q': 1}}, b"k", True),  # the escaped quote is inside the key
        ({"a": ['k":']}, b"k", False),  # ":" inside the value after an escaped quote
        ({"a": ["k\\", 1]}, b"k", False),  # an escaped backslash, then the closing quote
        ({"a": {"k\\": 1}}, b"k", True),
    ],
)
def test_any_in_object_key(document, needle, is_key):
    buffer = orjson.dumps(document)
    end = buffer.index(needle) + len(needle)
    assert any_in_object_key(buffer, [end]) is is_key


def test_any_in_object_key_looks_at_every_end():
    buffer = orjson.dumps({"a": "value one", "b": ["value two"], "key c": 1})
    values = [buffer.index(b"one") + 3, buffer.index(b"two") + 3]
    assert not any_in_object_key(buffer, values)
    assert any_in_object_key(buffer, [*values, buffer.index(b"key c") + 5])
    assert not any_in_object_key(buffer, [])
