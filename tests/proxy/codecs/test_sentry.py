import base64
import contextlib
import zlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs.base import AttachmentMode, CodecLimits
from proxy.codecs.sentry import scrub_envelope, scrub_store
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

FIXTURES = Path(__file__).parents[2] / "fixtures" / "codecs" / "sentry"
ENVELOPE_TYPE = "application/x-sentry-envelope"
SDK_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.envelope"))


def read_items(body: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """An independent strict reader: every item must have a correct ``length``."""
    header_line, _, rest = body.partition(b"\n")
    items = []
    while rest:
        item_line, _, rest = rest.partition(b"\n")
        item_header = orjson.loads(item_line)
        length = item_header["length"]
        payload, rest = rest[:length], rest[length:]
        assert len(payload) == length
        assert rest[:1] == b"\n"
        rest = rest[1:]
        items.append((item_header, payload))
    return orjson.loads(header_line), items


def build(header: dict, *items: tuple[dict, bytes], trailing: bool = True) -> bytes:
    lines = [orjson.dumps(header)]
    for item_header, payload in items:
        lines += [orjson.dumps(item_header), payload]
    return b"\n".join(lines) + (b"\n" if trailing else b"")


def scrub(body: bytes, engine: FakeEngine | None = None, **kwargs):
    kwargs.setdefault("path", "/api/42/envelope/")
    return scrub_envelope(body, make_ctx(engine, content_type=ENVELOPE_TYPE, **kwargs))


# --- envelopes captured from the real sentry_sdk ----------------------------------------


@pytest.mark.parametrize("name", SDK_FIXTURES)
def test_sdk_envelope_identity_keeps_every_item(name):
    body = (FIXTURES / name).read_bytes()
    result = scrub(body, FakeEngine(identity=True), attachments=AttachmentMode.KEEP)
    header, items = read_items(result.body)
    original_header, original_items = read_items(body)
    assert header == original_header
    assert [item_header for item_header, _ in items] == [h for h, _ in original_items]
    for (_, payload), (item_header, original) in zip(items, original_items, strict=True):
        if item_header["type"] == "attachment":
            assert payload == original
        else:
            assert orjson.loads(payload) == orjson.loads(original)


def test_sdk_error_event_is_scrubbed_and_attachment_dropped():
    body = (FIXTURES / "sdk_event.envelope").read_bytes()
    result = scrub(body)
    _, items = read_items(result.body)
    assert [item_header["type"] for item_header, _ in items] == ["event"]
    event = orjson.loads(items[0][1])
    assert event["user"]["email"] == "[email]"
    assert b"alice@example.com" not in result.body
    assert (result.outcome.events_in, result.outcome.events_out) == (1, 1)


@pytest.mark.parametrize(
    ("mode", "filename"),
    [
        (AttachmentMode.KEEP, "report-alice@example.com.log"),
        (AttachmentMode.KEEP_SCRUB_FILENAME, "[email]"),
    ],
    ids=["keep", "keep-scrub-filename"],
)
def test_sdk_attachment_modes(mode, filename):
    body = (FIXTURES / "sdk_event.envelope").read_bytes()
    result = scrub(body, attachments=mode)
    _, items = read_items(result.body)
    attachment_header, payload = items[1]
    assert attachment_header["filename"] == filename
    assert payload == read_items(body)[1][1][1]  # payload bytes untouched, newline included


def test_sdk_logs_container_is_a_list_of_events():
    engine = FakeEngine()
    body = (FIXTURES / "sdk_logs.envelope").read_bytes()
    result = scrub(body, engine)
    # The envelope header, the log item's payload, then the log item's header.
    assert [events for _, events in engine.calls] == [None, "items[*]", None]
    _, items = read_items(result.body)
    logs = orjson.loads(items[0][1])["items"]
    assert logs[0]["body"] == "[email]"
    assert items[0][0]["item_count"] == 2
    assert (result.outcome.events_in, result.outcome.events_out) == (2, 2)


def test_sdk_transaction_header_counts_are_not_events():
    engine = FakeEngine()
    result = scrub((FIXTURES / "sdk_transaction.envelope").read_bytes(), engine)
    assert (result.outcome.events_in, result.outcome.events_out) == (1, 1)
    assert engine.calls[0][0]["trace"]["release"] == "product@9.4.1"


# --- hand-made envelopes ---------------------------------------------------------------

HEADER = {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "dsn": "https://k@o.example/42"}


def test_items_without_length_run_to_the_newline():
    body = (
        b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n'
        b'{"type":"event"}\n{"message":"hi bob@example.com"}\n'
        b'{"type":"session"}\n{"sid":"s1","did":"carol@example.com","status":"ok"}'
    )
    result = scrub(body)
    _, items = read_items(result.body)
    assert [orjson.loads(payload) for _, payload in items] == [
        {"message": "[email]"},
        {"sid": "s1", "did": "[email]", "status": "ok"},
    ]
    assert all("length" in item_header for item_header, _ in items)


ITEM_TYPES = [
    ({"type": "event"}, {"message": "x@y.io"}),
    ({"type": "transaction"}, {"transaction": "/x", "spans": []}),
    ({"type": "session"}, {"sid": "a", "did": "x@y.io"}),
    ({"type": "sessions"}, {"aggregates": [{"started": "t", "exited": 1}], "attrs": {}}),
    ({"type": "user_report"}, {"event_id": "e", "email": "x@y.io", "comments": "hi"}),
    ({"type": "feedback"}, {"contexts": {"feedback": {"contact_email": "x@y.io"}}}),
    ({"type": "client_report"}, {"discarded_events": [{"reason": "r", "quantity": 1}]}),
    ({"type": "check_in"}, {"check_in_id": "c", "monitor_slug": "m", "status": "ok"}),
    ({"type": "profile"}, {"platform": "python", "profile": {"samples": []}}),
    ({"type": "span"}, {"span_id": "s", "description": "GET x@y.io"}),
]


@pytest.mark.parametrize(
    ("item_header", "payload"), ITEM_TYPES, ids=[h["type"] for h, _ in ITEM_TYPES]
)
def test_every_json_item_type_is_an_event(item_header, payload):
    engine = FakeEngine()
    body = build(HEADER, (item_header, orjson.dumps(payload)))
    result = scrub(body, engine)
    assert engine.calls[1] == (payload, None)
    _, items = read_items(result.body)
    assert items[0][0]["type"] == item_header["type"]
    assert b"x@y.io" not in result.body
    assert result.outcome.events_in == 1


def test_text_item_goes_through_scrub_text():
    engine = FakeEngine()
    body = build(HEADER, ({"type": "statsd"}, b"login.by.x@y.io:1|c|#host:h1"))
    result = scrub(body, engine)
    assert engine.text_calls == ["login.by.x@y.io:1|c|#host:h1"]
    assert read_items(result.body)[1][0][1] == b"[email]:1|c|#host:h1"


@pytest.mark.parametrize("item_type", ["replay_recording", "attachment", "mystery"])
def test_binary_items_follow_attachment_mode(item_type):
    body = build(
        HEADER,
        ({"type": "event", "length": 2}, b"{}"),
        ({"type": item_type, "length": 4, "filename": "a@b.c"}, b"\x00\xff\n\x01"),
    )
    dropped = scrub(body, attachments=AttachmentMode.DROP)
    assert [h["type"] for h, _ in read_items(dropped.body)[1]] == ["event"]
    kept = scrub(body, attachments=AttachmentMode.KEEP)
    assert read_items(kept.body)[1][1] == (
        {"type": item_type, "length": 4, "filename": "a@b.c"},
        b"\x00\xff\n\x01",
    )


def test_dropped_event_removes_its_attachments_but_not_other_items():
    body = build(
        HEADER,
        ({"type": "event"}, b'{"event":"drop-me"}'),
        ({"type": "attachment", "length": 3, "filename": "f.txt"}, b"abc"),
        ({"type": "session"}, b'{"sid":"s"}'),
    )
    result = scrub(body, attachments=AttachmentMode.KEEP)
    assert [h["type"] for h, _ in read_items(result.body)[1]] == ["session"]
    assert (result.outcome.events_in, result.outcome.events_out) == (2, 1)
    assert not result.empty


def test_every_event_dropped_is_empty():
    body = build(HEADER, ({"type": "event"}, b'{"event":"drop-me"}'))
    result = scrub(body)
    assert result.empty
    assert result.body == b""


def test_only_attachments_all_dropped_is_empty():
    body = build(HEADER, ({"type": "attachment", "length": 1}, b"x"))
    assert scrub(body, attachments=AttachmentMode.DROP).empty


def test_dropped_envelope_header_drops_everything():
    body = build({"event": "drop-me"}, ({"type": "event"}, b"{}"))
    assert scrub(body).empty


def test_log_container_item_count_follows_drops():
    logs = {"items": [{"body": "a"}, {"body": "b", "event": "drop-me"}, {"body": "c"}]}
    body = build(HEADER, ({"type": "log", "item_count": 3}, orjson.dumps(logs)))
    result = scrub(body)
    item_header, payload = read_items(result.body)[1][0]
    assert item_header["item_count"] == 2
    assert [log["body"] for log in orjson.loads(payload)["items"]] == ["a", "c"]


WELL_FORMED = [
    pytest.param(b"{}", 0, id="header-only-no-newline"),
    pytest.param(b"{}\n", 0, id="header-only"),
    pytest.param(b'{}\n{"type":"event","length":2}\n{}', 1, id="last-item-no-newline"),
    pytest.param(b'{}\n{"type":"event","length":2}\n{}\n\n\n', 1, id="trailing-blank-lines"),
    pytest.param(b'{}\n\n{"type":"event"}\n{}\n\n{"type":"session"}\n{}\n', 2, id="blank-between"),
    pytest.param(b'{}\n{"type":"statsd","length":0}\n\n', 1, id="zero-length"),
    pytest.param(b'{}\n{"type":"event","length":3}\n{}\n\n', 1, id="payload-with-newline"),
    pytest.param(b'{}\r\n{"type":"event"}\r\n{}\r\n', 1, id="crlf"),
]


@pytest.mark.parametrize(("body", "count"), WELL_FORMED)
def test_well_formed_envelopes(body, count):
    result = scrub(body, FakeEngine(identity=True))
    _, items = read_items(result.body)
    assert len(items) == count


MALFORMED = [
    pytest.param(b"", id="empty"),
    pytest.param(b"not json\n", id="header-not-json"),
    pytest.param(b"[1]\n", id="header-not-object"),
    pytest.param(b'{}\n{"length":2}\n{}\n', id="item-without-type"),
    pytest.param(b'{}\n{"type":"event","length":99}\n{}\n', id="length-overruns"),
    pytest.param(b'{}\n{"type":"event","length":1}\n{}\n', id="length-short"),
    pytest.param(b'{}\n{"type":"event","length":-1}\n{}\n', id="negative-length"),
    pytest.param(b'{}\n{"type":"event","length":"2"}\n{}\n', id="string-length"),
    pytest.param(b'{}\n{"type":"event","length":true}\n{}\n', id="bool-length"),
    pytest.param(b'{}\n{"type":"event","length":2.0}\n{}\n', id="float-length"),
    pytest.param(b'{}\n{"type":"event"}\n{"secret":"hunter2"\n', id="bad-json-item"),
    pytest.param(b'{}\n{"type":"event"\n{}\n', id="bad-item-header"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_envelopes(body):
    with pytest.raises(PayloadError) as caught:
        scrub(body)
    assert "hunter2" not in str(caught.value)


def test_too_many_items():
    body = b"{}\n" + b'{"type":"session"}\n{}\n' * 6
    with pytest.raises(LimitExceeded):
        scrub(body, limits=CodecLimits(max_parts=5))


# --- legacy store ----------------------------------------------------------------------

EVENT = {"message": "crash for alice@example.com", "level": "error"}
SCRUBBED_EVENT = {"message": "[email]", "level": "error"}


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


STORE_FORMS = [
    pytest.param(lambda data: data, lambda body: orjson.loads(body), id="json"),
    pytest.param(
        lambda data: base64.b64encode(zlib.compress(data)),
        lambda body: orjson.loads(zlib.decompress(base64.b64decode(body))),
        id="base64-zlib",
    ),
    pytest.param(
        lambda data: base64.b64encode(raw_deflate(data)),
        lambda body: orjson.loads(zlib.decompress(base64.b64decode(body), -zlib.MAX_WBITS)),
        id="base64-raw-deflate",
    ),
    pytest.param(
        lambda data: base64.b64encode(data),
        lambda body: orjson.loads(base64.b64decode(body)),
        id="base64-json",
    ),
]


@pytest.mark.parametrize(("encode", "decode"), STORE_FORMS)
def test_store_body_is_written_back_the_same_way(encode, decode):
    body = encode(orjson.dumps(EVENT))
    result = scrub_store(body, make_ctx(path="/api/42/store/"))
    assert decode(result.body) == SCRUBBED_EVENT
    assert result.outcome.events_in == 1


def test_store_dropped_event_is_empty():
    result = scrub_store(b'{"event":"drop-me"}', make_ctx())
    assert result.empty


@pytest.mark.parametrize(
    "body",
    [b"", b"!!!not base64!!!", base64.b64encode(b"\x00garbage"), b'{"cut":'],
    ids=["empty", "not-base64", "not-deflate", "cut-json"],
)
def test_store_malformed(body):
    with pytest.raises(PayloadError):
        scrub_store(body, make_ctx())


def test_store_deflate_bomb_is_capped():
    bomb = base64.b64encode(zlib.compress(b"{" + b" " * 50_000_000, 9))
    with pytest.raises(LimitExceeded):
        scrub_store(bomb, make_ctx(limits=CodecLimits(max_decoded_bytes=1_000_000)))


# --- properties ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(SDK_FIXTURES),
    cut=st.integers(min_value=0, max_value=3000),
    flip=st.integers(min_value=0, max_value=3000),
    byte=st.integers(min_value=0, max_value=255),
    mode=st.sampled_from(list(AttachmentMode)),
)
def test_mutated_sdk_envelopes(name, cut, flip, byte, mode):
    body = bytearray((FIXTURES / name).read_bytes())
    if flip < len(body):
        body[flip] = byte
    with contextlib.suppress(PayloadError):
        result = scrub(bytes(body[:cut]), attachments=mode)
        if not result.empty:
            read_items(result.body)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_random_bytes(body):
    with contextlib.suppress(PayloadError):
        scrub(body, attachments=AttachmentMode.KEEP_SCRUB_FILENAME)
    with contextlib.suppress(PayloadError):
        scrub_store(body, make_ctx())


def test_item_headers_are_scrubbed():
    engine = FakeEngine()
    body = build(
        HEADER,
        ({"type": "event", "reporter": "x@y.io"}, b'{"a":1}'),
        ({"type": "statsd", "note": "x@y.io"}, b"a:1|c"),
    )
    result = scrub(body, engine)
    assert b"x@y.io" not in result.body
    (event_header, _), (statsd_header, _) = read_items(result.body)[1]
    assert event_header == {"type": "event", "reporter": "[email]", "length": 7}
    assert statsd_header == {"type": "statsd", "note": "[email]", "length": 5}
    assert result.outcome.events_in == 1


def test_item_whose_header_the_engine_drops_is_dropped():
    body = build(
        HEADER,
        ({"type": "event"}, b'{"a":1}'),
        ({"type": "session", "event": "drop-me"}, b'{"s":1}'),
    )
    _, items = read_items(scrub(body, FakeEngine()).body)
    assert [header["type"] for header, _ in items] == ["event"]
