import asyncio
import contextlib
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import aiohttp
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs.base import AttachmentMode, CodecLimits
from proxy.codecs.multipart import boundary_of, parse_multipart, scrub_multipart
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

FIXTURES = Path(__file__).parents[2] / "fixtures" / "codecs" / "multipart"
BROWSER_BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
BROWSER_TYPE = f"multipart/form-data; boundary={BROWSER_BOUNDARY}"
MINIDUMP = (FIXTURES / "sentry_minidump.multipart").read_bytes()


def scrub(body: bytes, content_type: str = BROWSER_TYPE, engine=None, **kwargs):
    return scrub_multipart(body, make_ctx(engine, content_type=content_type, **kwargs))


def read_parts(
    body: bytes, content_type: str = BROWSER_TYPE
) -> list[tuple[str, str | None, bytes]]:
    """Parse with the standard library's email parser, independently of the codec."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), _payload(part))
        for part in message.iter_parts()
    ]


def _payload(part) -> bytes:
    return part.get_payload(decode=True) or b""


def test_browser_upload_text_fields_scrubbed_file_dropped():
    engine = FakeEngine()
    result = scrub(MINIDUMP, engine=engine)
    document, events = engine.calls[0]
    assert events is None
    assert document["sentry"]["user"]["email"] == "alice@example.com"  # JSON field decoded
    assert document["sentry[environment]"] == "datacenter"
    parts = read_parts(result.body)
    assert [name for name, _, _ in parts] == ["sentry", "sentry[environment]", "comment"]
    assert orjson.loads(parts[0][2])["user"]["email"] == "[email]"
    assert parts[2][2] == b"[email]"
    assert b"preamble" not in result.body
    assert b"epilogue" not in result.body
    assert result.body.count(BROWSER_BOUNDARY.encode()) == 4


def test_keep_mode_keeps_file_bytes_exactly():
    result = scrub(MINIDUMP, attachments=AttachmentMode.KEEP)
    name, filename, payload = read_parts(result.body)[2]
    assert (name, filename) == ("upload_file_minidump", "crash-alice@example.com.dmp")
    assert payload == b"MDMP\x93\xa7\x00\x00\r\n\x00\x01\x02--not-a-boundary\r\n"


def test_keep_scrub_filename_mode():
    engine = FakeEngine()
    result = scrub(MINIDUMP, engine=engine, attachments=AttachmentMode.KEEP_SCRUB_FILENAME)
    assert "crash-alice@example.com.dmp" in engine.text_calls
    _, filename, payload = read_parts(result.body)[2]
    assert filename == "[email]"
    assert payload.startswith(b"MDMP")
    assert b"Content-Type: application/octet-stream" in result.body


def test_identity_round_trip_keeps_every_part():
    result = scrub(MINIDUMP, engine=FakeEngine(identity=True), attachments=AttachmentMode.KEEP)
    assert read_parts(result.body) == read_parts(MINIDUMP)


def aiohttp_body(form: aiohttp.FormData) -> tuple[bytes, str]:
    writer = form()
    return asyncio.run(writer.as_bytes()), writer.content_type


def test_body_written_by_aiohttp_client():
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("email", "dave@example.com")
    form.add_field("tags", "a")
    form.add_field("tags", "b@example.com")
    form.add_field("payload", orjson.dumps([{"event": "x"}, {"event": "drop-me"}]).decode())
    form.add_field("upload", b"\x00\x01", filename="x.bin", content_type="application/octet-stream")
    body, content_type = aiohttp_body(form)
    engine = FakeEngine()
    result = scrub(body, content_type, engine=engine, attachments=AttachmentMode.KEEP)
    document, events = engine.calls[0]
    assert document["tags"] == ["a", "b@example.com"]
    assert events == "payload[*]"
    parts = read_parts(result.body, content_type)
    assert [(name, content) for name, _, content in parts[:4]] == [
        ("email", b"[email]"),
        ("tags", b"a"),
        ("tags", b"[email]"),
        ("payload", b'[{"event":"x"}]'),
    ]
    assert parts[4][1:] == ("x.bin", b"\x00\x01")
    assert (result.outcome.events_in, result.outcome.events_out) == (2, 1)
    assert b"Content-Type: text/plain; charset=utf-8" in result.body  # part headers kept


def test_every_event_dropped_is_empty():
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("event", "drop-me")
    body, content_type = aiohttp_body(form)
    assert scrub(body, content_type).empty


def test_only_files_all_dropped_is_empty():
    form = aiohttp.FormData()
    form.add_field("f", b"data", filename="a.bin")
    body, content_type = aiohttp_body(form)
    result = scrub(body, content_type, attachments=AttachmentMode.DROP)
    assert result.empty


def test_non_utf8_text_part_is_an_attachment():
    body = (
        b'--b\r\nContent-Disposition: form-data; name="blob"\r\n\r\n\xff\xfe\r\n'
        b'--b\r\nContent-Disposition: form-data; name="t"\r\n\r\nok\r\n--b--\r\n'
    )
    dropped = scrub(body, "multipart/form-data; boundary=b")
    assert [name for name, _, _ in read_parts(dropped.body, "multipart/form-data; boundary=b")] == [
        "t"
    ]
    kept = scrub(body, "multipart/form-data; boundary=b", attachments=AttachmentMode.KEEP)
    assert read_parts(kept.body, "multipart/form-data; boundary=b")[0][2] == b"\xff\xfe"


def test_extended_filename_is_read_and_replaced():
    body = (
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="x.txt"; '
        b"filename*=UTF-8''r%C3%A9sum%C3%A9-eve%40example.com.txt\r\n\r\nhello\r\n--b--\r\n"
    )
    engine = FakeEngine()
    result = scrub(
        body,
        "multipart/form-data; boundary=b",
        engine,
        attachments=AttachmentMode.KEEP_SCRUB_FILENAME,
    )
    assert engine.text_calls == ["résumé-eve@example.com.txt"]
    assert b"filename*" not in result.body
    assert b'filename="[email]"' in result.body


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('multipart/form-data; boundary="a b:c"', b"a b:c"),
        ("multipart/form-data; charset=utf-8; BOUNDARY=xyz", b"xyz"),
    ],
    ids=["plain", "quoted", "upper-case-param"],
)
def test_boundary_of(content_type, boundary):
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "x" * 71,
    ],
    ids=["missing", "empty", "too-long"],
)
def test_bad_boundary(content_type):
    with pytest.raises(PayloadError):
        scrub(b"--x\r\n\r\n--x--", content_type)


MALFORMED = [
    pytest.param(b"", id="empty"),
    pytest.param(b"no delimiter here", id="no-delimiter"),
    pytest.param(
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue', id="unterminated"
    ),
    pytest.param(
        b'--b\r\nContent-Disposition: form-data; name="a"\r\nvalue\r\n--b--', id="no-blank"
    ),
    pytest.param(b"--b\r\nno colon header\r\n\r\nv\r\n--b--", id="bad-header"),
    pytest.param(b"--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--", id="no-name"),
    pytest.param(b"--bX\r\n\r\nv\r\n--b--", id="delimiter-garbage"),
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed(body):
    with pytest.raises(PayloadError):
        scrub(body, "multipart/form-data; boundary=b")


def test_close_delimiter_only_is_no_parts():
    result = scrub(b"--b--\r\n", "multipart/form-data; boundary=b")
    assert result.body == b"--b--\r\n"
    assert not result.empty


def test_transport_padding_after_delimiter():
    body = b'--b  \r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--b--'
    assert parse_multipart(body, b"b", max_parts=10)[0].content == b"v"


def test_part_limit():
    part = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n'
    with pytest.raises(LimitExceeded):
        scrub(
            part * 4 + b"--b--", "multipart/form-data; boundary=b", limits=CodecLimits(max_parts=3)
        )


def test_scrubbed_value_containing_the_boundary_is_refused():
    class Sneaky(FakeEngine):
        def scrub(self, document, events):
            return super().scrub({"a": "x\r\n--b--\r\n"}, events)

    body = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--b--'
    with pytest.raises(PayloadError):
        scrub(body, "multipart/form-data; boundary=b", engine=Sneaky())


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=len(MINIDUMP)),
    flip=st.integers(min_value=0, max_value=len(MINIDUMP)),
    byte=st.sampled_from(list(b'-\r\n"=;:ab\x00')),
    mode=st.sampled_from(list(AttachmentMode)),
)
def test_mutated_bodies(cut, flip, byte, mode):
    body = bytearray(MINIDUMP)
    if flip < len(body):
        body[flip] = byte
    with contextlib.suppress(PayloadError):
        scrub(bytes(body[:cut]), attachments=mode)
    with contextlib.suppress(PayloadError):
        scrub(bytes(body), attachments=mode)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=200), content_type=st.text(max_size=40))
def test_random_bodies(body, content_type):
    with contextlib.suppress(PayloadError):
        scrub(body, "multipart/form-data; boundary=b")
    with contextlib.suppress(PayloadError):
        scrub(body, content_type)


def test_delimiter_after_a_bare_line_feed_is_refused():
    """Lenient receivers (Python's email, Go's mime/multipart) split on "\\n--b" too: the
    second part would reach them unscrubbed inside the first one's text (found by fuzzing)."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nhello\n'
        b'--b\r\nContent-Disposition: form-data; name="hidden"\r\n\r\nx@y.io\r\n--b--\r\n'
    )
    with pytest.raises(PayloadError, match="bare line feed"):
        scrub(body, "multipart/form-data; boundary=b")


def test_text_part_header_lines_are_scrubbed():
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\nX-Note: x@y.io\r\n\r\nhello\r\n'
        b"--b--\r\n"
    )
    result = scrub(body, "multipart/form-data; boundary=b")
    assert b"x@y.io" not in result.body
    assert b"X-Note: [email]\r\n\r\nhello" in result.body
    assert result.outcome.rule_hits["email"] == 1
