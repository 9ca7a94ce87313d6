"""Which wire format a request body is in, from its Content-Type, its path and its first bytes.

Specific media types decide alone (a Sentry envelope, protobuf, NDJSON, a form, multipart).
Generic ones (``application/json``, ``text/plain``, ``application/octet-stream``, none)
are refined by the path, because SDKs send OTLP JSON as ``application/json`` and Sentry's
browser SDK posts envelopes as ``text/plain`` to skip CORS preflights; what is left is
decided by sniffing the first bytes.
"""

from __future__ import annotations

import re

import orjson

JSON = "json"
NDJSON = "ndjson"
FORM = "form"
MULTIPART = "multipart"
SENTRY_ENVELOPE = "sentry_envelope"
SENTRY_STORE = "sentry_store"
OTLP_JSON = "otlp_json"
OTLP_PROTOBUF = "otlp_protobuf"
TEXT = "text"
BINARY = "binary"

DETECTED_FORMATS: tuple[str, ...] = (
    JSON,
    NDJSON,
    FORM,
    MULTIPART,
    SENTRY_ENVELOPE,
    SENTRY_STORE,
    OTLP_JSON,
    OTLP_PROTOBUF,
    TEXT,
    BINARY,
)

_OTLP_PATH = re.compile(r"/v1/(?:logs|traces|metrics)/?$")
_SENTRY_ENVELOPE_PATH = re.compile(r"/api/[^/]+/envelope/?$")
_SENTRY_STORE_PATH = re.compile(r"/api/[^/]+/store/?$")

_ENVELOPE_TYPES = frozenset({"application/x-sentry-envelope"})
_PROTOBUF_TYPES = frozenset(
    {"application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf"}
)
_NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonl",
        "application/jsonlines",
        "application/x-jsonlines",
    }
)
_JSON_TYPES = frozenset({"application/json", "text/json", "application/x-json"})
_FORM_TYPE = "application/x-www-form-urlencoded"
_MULTIPART_TYPE = "multipart/form-data"

# A value closing at the end of one line and another opening on the next, with no comma
# between them, cannot happen in one JSON document (newlines inside strings are escaped).
_NDJSON_SEAM = re.compile(rb"[}\]]\s*\r?\n\s*[{\[]")
_BOM = b"\xef\xbb\xbf"
_ITEM_HEADER_KEYS = frozenset(
    {"type", "length", "filename", "content_type", "attachment_type", "item_count", "platform"}
)
_TEXT_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def detect_format(content_type: str | None, path: str, head: bytes) -> str:
    """Name the format of a body (one of ``DETECTED_FORMATS``).

    ``content_type`` is the request's Content-Type header value, ``path`` the request path
    (a query string is ignored), ``head`` the first bytes of the *decoded* body (a few
    thousand, so a Sentry envelope's header line fits). Never raises.
    """
    media_type = media_type_of(content_type)
    path = path.split("?", 1)[0]
    decided = _by_specific_type(media_type, path)
    if decided is not None:
        return decided
    decided = _by_path(media_type, path, head)
    if decided is not None:
        return decided
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return JSON
    return _by_content(head)


def media_type_of(content_type: str | None) -> str:
    """The lower-cased media type of a Content-Type value, without parameters."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _by_specific_type(media_type: str, path: str) -> str | None:
    if media_type in _ENVELOPE_TYPES:
        return SENTRY_ENVELOPE
    if media_type in _PROTOBUF_TYPES:
        return OTLP_PROTOBUF if _OTLP_PATH.search(path) else BINARY
    if media_type in _NDJSON_TYPES:
        return NDJSON
    if media_type == _FORM_TYPE:
        return FORM
    if media_type == _MULTIPART_TYPE:
        return MULTIPART
    return None


def _by_path(media_type: str, path: str, head: bytes) -> str | None:
    if _SENTRY_ENVELOPE_PATH.search(path):
        return SENTRY_ENVELOPE
    if _SENTRY_STORE_PATH.search(path):
        return SENTRY_STORE
    if _OTLP_PATH.search(path):
        if media_type in _JSON_TYPES or _first_byte(head) == b"{":
            return OTLP_JSON
        return OTLP_PROTOBUF
    return None


def _by_content(head: bytes) -> str:
    first = _first_byte(head)
    if first in (b"{", b"["):
        if _looks_like_envelope(head):
            return SENTRY_ENVELOPE
        if _NDJSON_SEAM.search(head):
            return NDJSON
        return JSON
    if _looks_like_text(head):
        return TEXT
    return BINARY


def _first_byte(head: bytes) -> bytes:
    stripped = head.removeprefix(_BOM).lstrip()
    return stripped[:1]


def _looks_like_envelope(head: bytes) -> bool:
    """An envelope: a one-line JSON object, then an item header line with a ``type``."""
    lines = head.split(b"\n", 2)
    if len(lines) < 3:
        return False
    try:
        envelope_header = orjson.loads(lines[0])
        item_header = orjson.loads(lines[1])
    except orjson.JSONDecodeError:
        return False
    # NDJSON analytics lines often carry "type" too, so the item header must hold
    # nothing but item-header keys.
    return (
        isinstance(envelope_header, dict)
        and isinstance(item_header, dict)
        and isinstance(item_header.get("type"), str)
        and item_header.keys() <= _ITEM_HEADER_KEYS
    )


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return True
    # A UTF-8 sequence cut at the end of the head is not a reason to call it binary.
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:
            return False
    return _TEXT_CONTROL.search(head) is None
