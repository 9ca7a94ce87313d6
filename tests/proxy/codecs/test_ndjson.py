import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.outcome import PayloadError
from proxy.codecs.ndjson import parse_lines, scrub_ndjson, write_lines
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

CASES = [
    pytest.param(b'{"a":"x@y.z"}\n{"a":2}\n', b'{"a":"[email]"}\n{"a":2}\n', id="trailing-newline"),
    pytest.param(b'{"a":1}\n{"a":2}', b'{"a":1}\n{"a":2}', id="no-trailing-newline"),
    pytest.param(b'{"a":1}\r\n{"a":2}\r\n', b'{"a":1}\n{"a":2}\n', id="crlf"),
    pytest.param(b'\n{"a":1}\n\n   \n{"a":2}\n\n', b'{"a":1}\n{"a":2}\n', id="blank-lines"),
    pytest.param(b'{"event":"drop-me"}\n{"a":2}\n', b'{"a":2}\n', id="dropped-line"),
    pytest.param(b'1\n"two"\n[3]\n', b'1\n"two"\n[3]\n', id="scalars"),
    pytest.param(b"", b"", id="empty"),
    pytest.param(b"\n\n", b"", id="only-blank"),
]


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_scrub_ndjson(body, expected):
    engine = FakeEngine()
    result = scrub_ndjson(body, make_ctx(engine, content_type="application/x-ndjson"))
    assert result.body == expected
    assert engine.calls[0][1] == "[*]"
    assert not result.empty


def test_lines_are_events():
    result = scrub_ndjson(b'{"a":1}\n{"event":"drop-me"}\n{"b":2}\n', make_ctx())
    assert (result.outcome.events_in, result.outcome.events_out) == (3, 2)


def test_every_line_dropped_is_empty():
    result = scrub_ndjson(b'{"event":"drop-me"}\n{"event":"drop-me"}\n', make_ctx())
    assert result.empty
    assert result.body == b""


@pytest.mark.parametrize(
    ("body", "line"),
    [(b'{"a":1}\n{"secret":"hunter2"\n', 2), (b"nope\n", 1), (b'{"a":1}\n\n\n{]\n', 4)],
    ids=["cut-second", "word", "after-blanks"],
)
def test_invalid_line_is_named(body, line):
    with pytest.raises(PayloadError) as caught:
        scrub_ndjson(body, make_ctx())
    assert f"line {line}" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_parse_and_write_are_inverse():
    values = [{"a": 1}, [1, 2], "x", None]
    assert parse_lines(write_lines(values, trailing_newline=True)) == values


line_values = st.dictionaries(
    st.text(max_size=6), st.text(max_size=10) | st.integers(-(2**63), 2**63 - 1), max_size=3
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(line_values, max_size=6),
    cut=st.integers(min_value=0, max_value=300),
    noise=st.binary(max_size=5),
)
def test_random_and_truncated_bodies(values, cut, noise):
    body = b"\n".join(orjson.dumps(value) for value in values) + b"\n"
    identity = scrub_ndjson(body, make_ctx(FakeEngine(identity=True)))
    assert identity.body == (body if values else b"")
    for candidate in (body[:cut], body[:cut] + noise + body[cut:]):
        with contextlib.suppress(PayloadError):
            scrub_ndjson(candidate, make_ctx())
