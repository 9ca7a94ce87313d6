"""filters/result.py: a scrubbed document as bytes, parsed back only on demand."""

from __future__ import annotations

import orjson
import pytest

from filters.outcome import Outcome
from filters.result import ScrubResult


def test_value_parses_the_json_bytes():
    result = ScrubResult(json=b'{"a":[1,"x",null]}', outcome=Outcome())
    assert result.value == {"a": [1, "x", None]}


def test_value_is_parsed_lazily_and_once(monkeypatch):
    calls = []
    real_loads = orjson.loads

    def counting_loads(data):
        calls.append(data)
        return real_loads(data)

    monkeypatch.setattr(orjson, "loads", counting_loads)
    result = ScrubResult(json=b'{"a":1}', outcome=Outcome())
    assert calls == []
    first = result.value
    second = result.value
    assert first == {"a": 1}
    assert second is first
    assert calls == [b'{"a":1}']


def test_prepared_value_is_returned_without_parsing():
    marker = {"already": "parsed"}
    result = ScrubResult(json=b"not json at all", outcome=Outcome(), _value=marker, _parsed=True)
    assert result.value is marker


def test_parsed_null_value_is_not_parsed_again():
    result = ScrubResult(json=b"invalid", outcome=Outcome(), _value=None, _parsed=True)
    assert result.value is None


def test_invalid_json_raises_only_when_value_is_asked_for():
    result = ScrubResult(json=b"{broken", outcome=Outcome())
    assert result.json == b"{broken"
    with pytest.raises(orjson.JSONDecodeError):
        _ = result.value


def test_repr_shows_bytes_and_outcome_but_not_the_cached_value():
    result = ScrubResult(json=b"{}", outcome=Outcome(), _value={"cached": 1}, _parsed=True)
    text = repr(result)
    assert "json=b'{}'" in text
    assert "cached" not in text
