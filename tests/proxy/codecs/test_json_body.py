from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.outcome import PayloadError
from proxy.codecs.json_body import events_path_of, scrub_json
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

FIXTURES = Path(__file__).parents[2] / "fixtures" / "codecs" / "json"


def test_segment_batch_fixture():
    engine = FakeEngine()
    body = (FIXTURES / "segment_batch.json").read_bytes()
    result = scrub_json(body, make_ctx(engine))
    assert engine.calls[0][1] == "batch[*]"
    scrubbed = orjson.loads(result.body)
    assert [event.get("event") for event in scrubbed["batch"]] == ["Issue Created", None]
    assert scrubbed["batch"][0]["properties"]["reporter"] == "[email]"
    assert scrubbed["context"]["admin"] == "[email]"
    assert (result.outcome.events_in, result.outcome.events_out) == (3, 2)
    assert not result.empty
    assert result.content_type is None


CASES = [
    pytest.param(
        b'{"event":"x","user":"a@b.io"}', None, {"event": "x", "user": "[email]"}, id="one"
    ),
    pytest.param(b'[{"event":"a"},{"event":"drop-me"}]', "[*]", [{"event": "a"}], id="array"),
    pytest.param(b'{"batch":[{"event":"a"}],"k":1}', "batch[*]", None, id="batch"),
    pytest.param(b'{"batch":{"event":"a"}}', None, None, id="batch-not-a-list"),
    pytest.param(b'{"batch":[]}', "batch[*]", {"batch": []}, id="empty-batch"),
    pytest.param(b'"just a string"', None, "just a string", id="scalar"),
    pytest.param(b'\xef\xbb\xbf{"a":"x@y.z"}', None, {"a": "[email]"}, id="bom"),
    pytest.param(b'  {"a": 1}\n', None, {"a": 1}, id="whitespace"),
]


@pytest.mark.parametrize(("body", "events", "expected"), CASES)
def test_scrub_json(body, events, expected):
    engine = FakeEngine()
    result = scrub_json(body, make_ctx(engine))
    assert engine.calls[0][1] == events
    if expected is not None:
        assert orjson.loads(result.body) == expected
    assert not result.empty


def test_body_is_the_engines_canonical_bytes():
    engine = FakeEngine(identity=True)
    result = scrub_json(b'{ "b" : 1,\n "a" : [1, 2] }', make_ctx(engine))
    assert result.body == b'{"b":1,"a":[1,2]}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"event":"drop-me"}', id="single"),
        pytest.param(b'[{"event":"drop-me"},{"event":"drop-me"}]', id="array"),
        pytest.param(b'{"batch":[{"event":"drop-me"}],"sentAt":"x"}', id="batch"),
    ],
)
def test_all_events_dropped_is_empty(body):
    result = scrub_json(body, make_ctx())
    assert result.empty
    assert result.body == b""
    assert result.outcome.all_events_dropped


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"password":"hunter2"', b"nope", b"{'a': 1}", b"[1,]", b"\xff\xfe"],
    ids=["empty", "open", "cut", "word", "single-quotes", "trailing-comma", "binary"],
)
def test_invalid_json_is_a_payload_error_without_content(body):
    with pytest.raises(PayloadError) as caught:
        scrub_json(body, make_ctx())
    assert caught.value.codec == "json"
    assert "hunter2" not in str(caught.value)


def test_events_path_of():
    assert events_path_of([]) == "[*]"
    assert events_path_of({"batch": []}) == "batch[*]"
    assert events_path_of({"events": []}) is None
    assert events_path_of(3) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, cut=st.integers(min_value=0, max_value=400), noise=st.binary(max_size=4))
def test_random_and_truncated_bodies(value, cut, noise):
    body = orjson.dumps(value)
    for candidate in (body, body[:cut], body[:cut] + noise):
        try:
            result = scrub_json(candidate, make_ctx())
        except PayloadError:
            continue
        assert isinstance(result.body, bytes)


@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_identity_round_trip(value):
    body = orjson.dumps(value)
    assert scrub_json(body, make_ctx(FakeEngine(identity=True))).body == body
