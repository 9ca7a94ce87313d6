import base64
import contextlib
from urllib.parse import parse_qsl, quote, urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs.base import CodecLimits
from proxy.codecs.query import scrub_query
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

SNOWPLOW_CONTEXT = {
    "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
    "data": [{"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"email": "a@b.io"}}],
}


def b64url(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def test_pixel_query_is_scrubbed_in_place():
    cx = b64url(SNOWPLOW_CONTEXT)
    query = f"e=pv&url={quote('https://x.io/?u=a@b.io', safe='')}&uid=a%40b.io&cx={cx}&tv=js-3"
    engine = FakeEngine()
    scrubbed, outcome = scrub_query(query, make_ctx(engine, path="/i"))
    document, events = engine.calls[0]
    assert events is None
    assert document["cx"] == SNOWPLOW_CONTEXT
    pairs = parse_qsl(scrubbed, keep_blank_values=True)
    assert [name for name, _ in pairs] == ["e", "url", "uid", "cx", "tv"]
    assert pairs[0] == ("e", "pv")
    assert pairs[1] == ("url", "[email]")
    assert pairs[2] == ("uid", "[email]")
    assert scrubbed.startswith("e=pv&")
    assert scrubbed.endswith("&tv=js-3")
    new_cx = pairs[3][1]
    assert "=" not in new_cx and "+" not in new_cx and "/" not in new_cx  # base64url, no padding
    context = orjson.loads(base64.urlsafe_b64decode(new_cx + "=" * (-len(new_cx) % 4)))
    assert context["data"][0]["data"]["email"] == "[email]"
    assert outcome.rule_hits["email"] == 3


@pytest.mark.parametrize(
    "query",
    [
        "a=1&b=2",
        "a=1&a=2&b",
        "q=hello+world&r=%E2%9C%93&s=%7e",
        "empty=&&trailing=1&",
        "cx=" + b64url({"a": [1, 2]}),
        "json=%5B1%2C2%5D",
    ],
    ids=["simple", "repeated", "encodings", "odd-separators", "base64url", "json"],
)
def test_identity_keeps_the_query_byte_exact(query):
    scrubbed, _ = scrub_query(query, make_ctx(FakeEngine(identity=True)))
    assert scrubbed == query.replace("&&", "&").rstrip("&")


def test_empty_query_skips_the_engine():
    engine = FakeEngine()
    scrubbed, outcome = scrub_query("", make_ctx(engine))
    assert scrubbed == ""
    assert not outcome.changed
    assert not engine.calls


def test_dropped_request_gives_empty_query():
    scrubbed, outcome = scrub_query("event=drop-me&x=1", make_ctx())
    assert scrubbed == ""
    assert outcome.all_events_dropped


def test_not_utf8_is_a_payload_error():
    with pytest.raises(PayloadError) as caught:
        scrub_query("a=%C3%28", make_ctx())
    assert caught.value.codec == "query"


def test_lone_surrogate_is_a_payload_error():
    with pytest.raises(PayloadError):
        scrub_query("a=\udcff", make_ctx())


def test_too_many_pairs():
    with pytest.raises(LimitExceeded):
        scrub_query(
            "&".join(f"k{i}=v" for i in range(6)), make_ctx(limits=CodecLimits(max_parts=5))
        )


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=6))
def test_random_queries_round_trip(pairs):
    query = urlencode(pairs)
    scrubbed, _ = scrub_query(query, make_ctx(FakeEngine(identity=True)))
    assert parse_qsl(scrubbed, keep_blank_values=True) == parse_qsl(query, keep_blank_values=True)


@settings(max_examples=200, deadline=None)
@given(query=st.text(st.characters(exclude_categories=()), max_size=60))
def test_arbitrary_text_never_raises_unexpectedly(query):
    with contextlib.suppress(PayloadError):
        scrub_query(query, make_ctx())
