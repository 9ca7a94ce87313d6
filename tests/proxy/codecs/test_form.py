import base64
import contextlib
from urllib.parse import parse_qsl, quote_plus

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs.base import CodecLimits
from proxy.codecs.fields import FieldKind, decode_field_value, encode_field_value
from proxy.codecs.form import scrub_form
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

FORM = "application/x-www-form-urlencoded"


def b64(value, *, urlsafe=False, padded=True):
    data = orjson.dumps(value)
    text = (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()
    return text if padded else text.rstrip("=")


def scrub(body: bytes, engine: FakeEngine | None = None, **kwargs):
    return scrub_form(body, make_ctx(engine, content_type=FORM, **kwargs))


def test_document_keeps_repeated_keys_as_lists():
    engine = FakeEngine(identity=True)
    scrub(b"a=1&b=2&a=3&c=", engine)
    document, events = engine.calls[0]
    assert document == {"a": ["1", "3"], "b": "2", "c": ""}
    assert events is None


def test_identity_is_byte_exact():
    body = b"a=1&flag&b=hello+world&a=%7E3&e=%C3%A9&json=%7B%22k%22%3A%201%7D"
    assert scrub(body, FakeEngine(identity=True)).body == body


def test_changed_field_is_rewritten_in_place():
    body = b"first=1&email=alice%40example.com&last=2"
    assert scrub(body).body == b"first=1&email=%5Bemail%5D&last=2"


def test_repeated_keys_keep_their_order():
    body = b"tag=a&x=1&tag=b%40c.d&tag=c"
    assert scrub(body).body == b"tag=a&x=1&tag=%5Bemail%5D&tag=c"


MIXPANEL_EVENTS = [
    {"event": "Page Viewed", "properties": {"distinct_id": "alice@example.com", "token": "t"}},
    {"event": "drop-me", "properties": {"token": "t"}},
]

BASE64_CASES = [
    pytest.param({}, id="standard-padded"),
    pytest.param({"urlsafe": True}, id="urlsafe-padded"),
    pytest.param({"urlsafe": True, "padded": False}, id="urlsafe-unpadded"),
    pytest.param({"padded": False}, id="standard-unpadded"),
]


@pytest.mark.parametrize("style", BASE64_CASES)
def test_mixpanel_base64_batch(style):
    engine = FakeEngine()
    data = b64(MIXPANEL_EVENTS, **style)
    result = scrub(f"data={data}&ip=1&verbose=1".encode(), engine)
    document, events = engine.calls[0]
    assert events == "data[*]"
    assert document["data"] == MIXPANEL_EVENTS
    fields = parse_qsl(result.body.decode(), keep_blank_values=True)
    assert [name for name, _ in fields] == ["data", "ip", "verbose"]
    new_data = fields[0][1]
    assert new_data.endswith("=") == style.get("padded", True) or len(new_data) % 4 == 0
    padded = new_data + "=" * (-len(new_data) % 4)
    decoded = orjson.loads(base64.b64decode(padded, altchars=b"-_" if "urlsafe" in style else None))
    assert decoded == [
        {"event": "Page Viewed", "properties": {"distinct_id": "[email]", "token": "t"}}
    ]
    assert (result.outcome.events_in, result.outcome.events_out) == (2, 1)


def test_single_base64_event_object():
    engine = FakeEngine()
    data = b64({"event": "signup", "properties": {"email": "x@y.z"}})
    result = scrub(f"data={data}".encode(), engine)
    assert engine.calls[0][1] is None
    value = orjson.loads(base64.b64decode(parse_qsl(result.body.decode())[0][1]))
    assert value == {"event": "signup", "properties": {"email": "[email]"}}


def test_base64_plus_sent_unencoded_is_still_read():
    value = {"k": "~~~>>>???"}
    data = b64(value)
    assert "+" in data or "/" in data
    engine = FakeEngine(identity=True)
    scrub(f"data={data}".encode(), engine)  # '+' arrives as a space
    assert engine.calls[0][0]["data"] == value


def test_every_event_dropped_is_empty():
    data = b64([{"event": "drop-me"}])
    result = scrub(f"data={data}&ip=1".encode())
    assert result.empty
    assert result.body == b""


def test_whole_form_dropped_is_empty():
    assert scrub(b"event=drop-me&x=1").empty


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("hello", FieldKind.TEXT),
        ("1234", FieldKind.TEXT),  # valid base64, but not of JSON
        ("e30=", FieldKind.BASE64_JSON),
        ("W10=", FieldKind.BASE64_JSON),
        ("W10", FieldKind.TEXT),  # too short to be worth guessing
        ('{"a":1}', FieldKind.JSON),
        ("[1, 2]", FieldKind.JSON),
        ("{not json}", FieldKind.TEXT),
        ("abcd", FieldKind.TEXT),
        ("eyJ", FieldKind.TEXT),
    ],
    ids=str,
)
def test_decode_field_value_kinds(text, kind):
    assert decode_field_value(text)[1].kind is kind


@pytest.mark.parametrize("text", ["e30=", "W3sia2V5IjoidmFsdWUifV0", "eyJhIjpbMSwyXX0="], ids=str)
def test_field_value_round_trip(text):
    value, encoding = decode_field_value(text)
    assert encode_field_value(value, encoding) == text


def test_not_utf8_is_a_payload_error():
    with pytest.raises(PayloadError):
        scrub(b"a=%ff%fe")
    with pytest.raises(PayloadError):
        scrub(b"a=\xff")


def test_too_many_fields():
    with pytest.raises(LimitExceeded):
        scrub(b"&".join(b"k%d=v" % i for i in range(11)), limits=CodecLimits(max_parts=10))


def test_engine_removing_a_field_drops_it():
    class RemoveSecret(FakeEngine):
        def scrub(self, document, events):
            document = {key: value for key, value in document.items() if key != "secret"}
            return super().scrub(document, events)

    assert scrub(b"a=1&secret=s&b=2", RemoveSecret()).body == b"a=1&b=2"


def test_empty_body():
    engine = FakeEngine()
    result = scrub(b"", engine)
    assert result.body == b""
    assert not engine.calls


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=6),
    noise=st.binary(max_size=20),
)
def test_random_forms(pairs, noise):
    from urllib.parse import urlencode

    body = urlencode(pairs).encode()
    identity = scrub(body, FakeEngine(identity=True))
    assert identity.body == body
    for candidate in (noise, body + noise, noise + body):
        with contextlib.suppress(PayloadError):
            scrub(candidate)


@pytest.mark.parametrize(
    "document",
    [b'{"n": 1e400, "m": "x@y.io"}', b'{"m": "\\ud800 x@y.io"}', b'[NaN, "x@y.io"]'],
    ids=["huge-number", "lone-surrogate", "nan"],
)
def test_base64_of_json_that_does_not_parse_is_refused(document):
    """JavaScript's JSON.parse reads these; forwarded as opaque text they would carry the
    address past the engine (found by fuzzing)."""
    with pytest.raises(PayloadError):
        scrub(b"data=" + base64.b64encode(document))


def test_base64_json_with_duplicate_keys_is_rewritten():
    """The first "m" is what some parsers keep; the engine only saw the second."""
    document = b'{"m": "x@y.io", "m": "ok"}'
    result = scrub(b"data=" + base64.b64encode(document) + b"&j=" + document)
    assert b"x@y.io" not in result.body
    assert b"eDB5LmlvIiwg" not in result.body


def test_base64_json_wrapped_over_lines_is_decoded():
    data = base64.encodebytes(orjson.dumps({"distinct_id": "x@y.io", "pad": "p" * 60})).decode()
    assert "\n" in data.strip()
    result = scrub(f"data={quote_plus(data)}".encode())
    value = orjson.loads(base64.b64decode(parse_qsl(result.body.decode())[0][1]))
    assert value["distinct_id"] == "[email]"
