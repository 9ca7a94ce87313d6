"""Canary values, telemetry payload builders and independent decoders for e2e tests.

Everything here is the *vendor's* view: payloads are built the way SDKs build them, and
what the upstream received is taken apart with the standard libraries and the
``opentelemetry.proto`` classes, never with scrubgate's own codecs.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import gzip
import hashlib
import hmac
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import brotli
import orjson
import zstandard
from google.protobuf import json_format
from google.protobuf.message import Message

HASH_KEY = "e2e-test-hash-key-0123456789abcdef"
"""The hash key every e2e proxy runs with (as E2E_HASH_KEY and SCRUBGATE_HASH_KEY)."""


def inflate(data: bytes) -> bytes:
    """``Content-Encoding: deflate`` as real servers accept it: zlib-wrapped (RFC 1950),
    or bare deflate (RFC 1951), which some clients send under the same name."""
    try:
        return zlib.decompress(data)
    except zlib.error:
        return zlib.decompress(data, -zlib.MAX_WBITS)


def decode_layers(data: bytes, content_encoding: str | None) -> bytes:
    """Undo every layer named in a Content-Encoding value (applied left to right)."""
    encodings = [
        token.strip().lower() for token in (content_encoding or "").split(",") if token.strip()
    ]
    for encoding in reversed(encodings):
        if encoding in ("gzip", "x-gzip"):
            data = gzip.decompress(data)
        elif encoding == "deflate":
            data = inflate(data)
        elif encoding == "br":
            data = brotli.decompress(data)
        elif encoding == "zstd":
            data = zstandard.ZstdDecompressor().decompress(data, max_output_size=64 * 2**20)
        elif encoding != "identity":
            raise ValueError(f"recorder cannot decode {encoding!r}")
    return data


# --- canaries ----------------------------------------------------------------------------

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
IP = "203.0.113.77"
HOME_USER = "zorvath"
USER_ID = "user-8812"

CANARIES: dict[str, tuple[str, ...]] = {
    "email": (EMAIL, "jane.doe%40example.com"),
    "phone": ("7946 0958", "79460958", "7946-0958"),
    "card": (CARD, "4111111111111111", "4111-1111-1111-1111"),
    "jwt": (JWT, "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    "ip": (IP,),
    "home path user": (HOME_USER,),
    "user id": (USER_ID,),
}
"""Every sensitive value the payloads carry, in the spellings it could leave in."""

MESSAGE = (
    f"Call me at {PHONE} or {EMAIL}; card {CARD}; token {JWT}; "
    f"from {IP}; see /home/{HOME_USER}/projects/app/main.py"
)
SCRUBBED_MESSAGE = (
    "Call me at [phone] or [email]; card [card]; token [jwt]; "
    "from [ip]; see /home/[user]/projects/app/main.py"
)
URL = f"https://app.example.org/settings/profile?email={EMAIL}&tab=2"
GENERALIZED_URL = "https://app.example.org/settings/profile"


def hashed(value: str) -> str:
    """What ``hash`` makes of a value under the e2e key (HMAC-SHA256, 32 hex digits)."""
    return hmac.new(HASH_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


HASHED_USER_ID = hashed(USER_ID)

# --- policy shared by the e2e modules ----------------------------------------------------

POLICY = """
policies:
  p:
    rules:
      - id: hash-ids
        action: hash
        ignore_case: true
        select: [userId, "**.userId", user_id, "**.user_id", uid, "**.uid", user.id]
      - id: generalize-ip
        action: generalize
        kind: ip
        ignore_case: true
        select: [ip, "**.ip", ip_address, "**.ip_address"]
      - id: generalize-url
        action: generalize
        kind: url
        ignore_case: true
        select: [url, "**.url"]
      - id: redact
        action: redact
        select: ["**"]
"""
"""Policy ``p``: hash ids, generalize IPs and URLs, redact every detector hit on ``**``."""

PREAMBLE = (
    """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
"""
    + POLICY
)
"""Settings up to the routes: one listener, admin on an ephemeral port, the hash key from
E2E_HASH_KEY and policy ``p``."""

# --- leak search -------------------------------------------------------------------------

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{12,}={0,2}")


def exposed_text(data: bytes, depth: int = 2) -> str:
    """All the text a recipient could read out of ``data``: the bytes themselves, their
    percent-decoding, and whatever base64 runs inside decode (or inflate) to."""
    pieces = [data, unquote_to_bytes(data.replace(b"+", b" "))]
    if depth > 0:
        for source in list(pieces):
            for match in _BASE64_RUN.finditer(source):
                for raw in _base64_candidates(match.group()):
                    pieces.append(exposed_text(raw, depth - 1).encode())
                    for inflated in _inflations(raw):
                        pieces.append(exposed_text(inflated, depth - 1).encode())
    return "\n".join(piece.decode("utf-8", "replace") for piece in pieces)


def _base64_candidates(run: bytes) -> Iterable[bytes]:
    body = run.rstrip(b"=")
    padded = body + b"=" * (-len(body) % 4)
    for altchars in (None, b"-_"):
        try:
            yield base64.b64decode(padded, altchars=altchars)
        except (binascii.Error, ValueError):
            continue


def _inflations(raw: bytes) -> Iterable[bytes]:
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS, zlib.MAX_WBITS | 16):
        try:
            yield zlib.decompressobj(wbits).decompress(raw, 1 << 22)
        except zlib.error:
            continue


def leaked_canaries(data: bytes, allowed: Iterable[bytes] = ()) -> list[str]:
    """Names of the canaries readable in ``data`` (``allowed`` byte strings, kept on
    purpose by the policy, are cut out first)."""
    for keep in allowed:
        data = data.replace(keep, b"")
    text = exposed_text(data).lower()
    return [
        name
        for name, spellings in CANARIES.items()
        if any(spelling.lower() in text for spelling in spellings)
    ]


def assert_no_canaries(data: bytes, allowed: Iterable[bytes] = ()) -> None:
    leaked = leaked_canaries(data, allowed)
    assert not leaked, f"sensitive values reached the upstream: {leaked}"


# --- content encodings -------------------------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class Encoding:
    """How a client compresses a body: the header it sends (None: no header) and how."""

    id: str
    header: str | None
    sniffed: bool = False

    def encode(self, data: bytes) -> bytes:
        return {
            "identity": lambda: data,
            "gzip": lambda: gzip.compress(data),
            "x-gzip": lambda: gzip.compress(data),
            "deflate-zlib": lambda: zlib.compress(data),
            "deflate-raw": lambda: raw_deflate(data),
            "br": lambda: brotli.compress(data),
            "zstd": lambda: zstandard.ZstdCompressor().compress(data),
            "gzip-br": lambda: brotli.compress(gzip.compress(data)),
            "gzip-unlabelled": lambda: gzip.compress(data),
        }[self.id]()

    def decode_arrival(self, raw: bytes, header: str | None) -> bytes:
        """Decode what the upstream got. A body the client compressed without saying so
        must arrive compressed the same way, still without a header."""
        if self.sniffed:
            assert header is None, "an unlabelled body must stay unlabelled"
            assert raw[:2] == b"\x1f\x8b", "an unlabelled gzip body must stay gzip"
            return gzip.decompress(raw)
        return decode_layers(raw, header)


ENCODINGS: tuple[Encoding, ...] = (
    Encoding("identity", None),
    Encoding("gzip", "gzip"),
    Encoding("x-gzip", "x-gzip"),
    Encoding("deflate-zlib", "deflate"),
    Encoding("deflate-raw", "deflate"),
    Encoding("br", "br"),
    Encoding("zstd", "zstd"),
    Encoding("gzip-br", "gzip, br"),
    Encoding("gzip-unlabelled", None, sniffed=True),
)

# --- analytics events --------------------------------------------------------------------


def analytics_event(number: int = 0) -> dict[str, Any]:
    """A Segment-style track call carrying every canary."""
    return {
        "type": "track",
        "event": "Settings Saved",
        "messageId": f"msg-{number}",
        "userId": USER_ID,
        "context": {"ip": IP, "page": {"url": URL, "title": "Profile"}},
        "properties": {"plan": "pro", "seats": 12, "beta": True, "ratio": 0.5, "note": MESSAGE},
    }


def is_hash(value: Any) -> bool:
    """A 32-hex-digit keyed hash (of something)."""
    return isinstance(value, str) and re.fullmatch("[0-9a-f]{32}", value) is not None


def check_analytics_event(
    event: dict[str, Any], number: int = 0, *, exact_hash: bool = True
) -> None:
    """``exact_hash=False`` only checks that the id is a hash, not that it is the hash of
    the original id (see test_formats.test_top_level_event_lists_hash_ids_once)."""
    assert event["type"] == "track"
    assert event["event"] == "Settings Saved"
    assert event["messageId"] == f"msg-{number}"
    if exact_hash:
        assert event["userId"] == HASHED_USER_ID
    else:
        assert is_hash(event["userId"])
    assert event["context"]["ip"] in ("203.0.113.0", "[ip]")
    assert event["context"]["page"] == {"url": GENERALIZED_URL, "title": "Profile"}
    assert event["properties"] == {
        "plan": "pro",
        "seats": 12,
        "beta": True,
        "ratio": 0.5,
        "note": SCRUBBED_MESSAGE,
    }


# --- Sentry ------------------------------------------------------------------------------

SENTRY_EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
SENTRY_SESSION_ID = "7c7d5a8e-8f1e-4a63-9d3d-5ad1c1b0e1f2"
ATTACHMENT = b"\x00\x01core-dump\n\xff\xfe" + bytes(range(256)) + b"\nend"
ATTACHMENT_FILENAME = f"/home/{HOME_USER}/crash.log"


def sentry_event() -> dict[str, Any]:
    return {
        "event_id": SENTRY_EVENT_ID,
        "platform": "python",
        "level": "error",
        "timestamp": 1700000000.5,
        "release": "app@1.2.3",
        "message": MESSAGE,
        "user": {"id": USER_ID, "email": EMAIL, "ip_address": IP},
        "request": {"url": URL, "method": "POST"},
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": f"bad card {CARD}",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": f"/home/{HOME_USER}/app/main.py",
                                "function": "save",
                                "lineno": 42,
                            }
                        ]
                    },
                }
            ]
        },
        "tags": {"component": "billing"},
    }


def check_sentry_event(event: dict[str, Any]) -> None:
    assert event["event_id"] == SENTRY_EVENT_ID
    assert event["platform"] == "python"
    assert event["level"] == "error"
    assert event["timestamp"] == 1700000000.5
    assert event["release"] == "app@1.2.3"
    assert event["message"] == SCRUBBED_MESSAGE
    assert event["user"]["id"] == HASHED_USER_ID
    assert event["user"]["email"] == "[email]"
    assert event["user"]["ip_address"] in ("203.0.113.0", "[ip]")
    assert event["request"] == {"url": GENERALIZED_URL, "method": "POST"}
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ValueError"
    assert exception["value"] == "bad card [card]"
    (frame,) = exception["stacktrace"]["frames"]
    assert frame == {"filename": "/home/[user]/app/main.py", "function": "save", "lineno": 42}
    assert event["tags"] == {"component": "billing"}


def sentry_session() -> dict[str, Any]:
    return {
        "sid": SENTRY_SESSION_ID,
        "did": EMAIL,
        "init": True,
        "started": "2024-01-01T00:00:00.000Z",
        "timestamp": "2024-01-01T00:00:05.000Z",
        "status": "exited",
        "errors": 1,
        "attrs": {"release": "app@1.2.3", "environment": "production", "ip_address": IP},
    }


def build_envelope(items: list[tuple[dict[str, Any], bytes]], header: dict[str, Any]) -> bytes:
    """An envelope as SDKs write it: every item header carries its payload's length."""
    parts = [orjson.dumps(header), b"\n"]
    for item_header, payload in items:
        parts += [orjson.dumps({**item_header, "length": len(payload)}), b"\n", payload, b"\n"]
    return b"".join(parts)


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """An independent, strict envelope parser: every item must carry a ``length`` that
    ends exactly at a newline (or at the end of the body)."""
    header_line, _, rest = body.partition(b"\n")
    header = orjson.loads(header_line)
    assert isinstance(header, dict)
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest:
        item_line, newline, rest = rest.partition(b"\n")
        assert newline, "item header without a payload"
        item_header = orjson.loads(item_line)
        length = item_header["length"]
        assert isinstance(length, int) and 0 <= length <= len(rest), "bad item length"
        payload, rest = rest[:length], rest[length:]
        assert rest[:1] in (b"\n", b""), "item length does not end at a newline"
        rest = rest[1:]
        items.append((item_header, payload))
    return header, items


# --- multipart ---------------------------------------------------------------------------

BOUNDARY = "----e2eBoundary7MA4YWxkTrZu0gW"
SCREENSHOT = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200)) + b"IEND\xaeB`\x82"
SCREENSHOT_FILENAME = f"screenshot for {EMAIL} (1).png"


def build_multipart(
    fields: list[tuple[str, str]], files: list[tuple[str, str, str, bytes]]
) -> bytes:
    """``multipart/form-data`` as a browser writes it (text fields, then files)."""
    chunks: list[bytes] = []
    for name, value in fields:
        chunks += [
            f"--{BOUNDARY}\r\n".encode(),
            f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode(),
            value.encode(),
            b"\r\n",
        ]
    for name, filename, content_type, content in files:
        chunks += [
            f"--{BOUNDARY}\r\n".encode(),
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode(),
            f"Content-Type: {content_type}\r\n\r\n".encode(),
            content,
            b"\r\n",
        ]
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


@dataclass
class FormPart:
    name: str
    filename: str | None
    content: bytes
    content_type: str


def parse_multipart(body: bytes, content_type: str) -> list[FormPart]:
    """Parse multipart/form-data with the standard library's MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart(), "upstream body is not multipart"
    assert not message.defects, f"multipart defects: {message.defects}"
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts.append(
            FormPart(
                name,
                part.get_filename(),
                part.get_payload(decode=True),
                part.get_content_type(),
            )
        )
    return parts


# --- OTLP --------------------------------------------------------------------------------

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def otlp_to_json(message: Message) -> bytes:
    """OTLP/JSON as the spec writes it: protobuf JSON mapping, but ids in hex."""
    document = json_format.MessageToDict(message)
    _convert_ids(document, lambda value: base64.b64decode(value).hex())
    return orjson.dumps(document)


def otlp_from_json(data: bytes, message_type: type[Message]) -> Message:
    """Parse OTLP/JSON strictly into the protobuf message (ids back from hex)."""
    document = orjson.loads(data)
    _convert_ids(document, lambda value: base64.b64encode(bytes.fromhex(value)).decode())
    return json_format.ParseDict(document, message_type())


def _convert_ids(node: Any, convert: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _convert_ids(item, convert)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                node[key] = convert(value)
            else:
                _convert_ids(value, convert)


def attribute_dict(attributes: Iterable[Any]) -> dict[str, Any]:
    """``KeyValue`` protobufs -> ``{key: python value}``."""
    values: dict[str, Any] = {}
    for attribute in attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind) if kind else None
    return values


def query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)
