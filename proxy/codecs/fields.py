"""Named text fields (form pairs, query pairs, multipart text parts) as one document.

A list of ``(name, text)`` fields becomes a dict, in first-seen order:

* a name seen once maps to its value, a name seen more than once to the list of its values
  (in order), so ``a=1&b=2&a=3`` is ``{"a": ["1", "3"], "b": "2"}``;
* a value that is a JSON object or array, as text or as base64 / base64url of JSON (what
  Mixpanel's ``data=eyJ...`` and Snowplow's ``cx=`` carry), is decoded to that JSON value
  so rules see its structure; every other value stays a string.

``FieldLayout`` remembers each field's position and how its text was encoded, so the
scrubbed document is written back in the original order and the original encoding (same
base64 alphabet and padding). A name the engine removed disappears; a name it added is
appended as text.

The events path is ``"<name>[*]"`` when a decoded field is a non-empty list of objects
(a batch of events, as Mixpanel sends), else ``None`` (the fields are one event).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs.json_parse import looks_like_json_container

_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE64_STANDARD = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_BASE64_URLSAFE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_BASE64_LINE_BREAKS = re.compile(r"[\t\n\r\f\v]+")
_MIN_BASE64_LENGTH = 4  # "e30=" is the shortest JSON container ({}) in base64


class FieldKind(Enum):
    TEXT = "text"
    JSON = "json"
    BASE64_JSON = "base64-json"


@dataclass(frozen=True, slots=True)
class FieldEncoding:
    """How a field's text carried its value."""

    kind: FieldKind = FieldKind.TEXT
    urlsafe: bool = False
    padded: bool = True


TEXT = FieldEncoding()


@dataclass(frozen=True, slots=True)
class FieldSlot:
    """One field as it appeared: its position among the fields (-1 for a field the engine
    added), its name, which occurrence of that name it was, how it was encoded, its
    original text, and the canonical JSON of its decoded value as decoded.

    The fingerprint is taken at decode time because the engine changes decoded objects
    in place: comparing against the (mutated) object itself would call a scrubbed JSON
    field "unchanged" and send its original text. A JSON field whose text is not the
    canonical JSON of its value gets an empty fingerprint, so it is always re-encoded:
    its text may hold what parsing dropped (the first of two duplicate keys), which the
    engine never saw."""

    index: int
    name: str
    occurrence: int
    encoding: FieldEncoding
    original: str
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class FieldOutput:
    """A field to write back: ``changed`` is false when the value is what it was, so a
    writer can emit the original bytes untouched."""

    slot: FieldSlot
    text: str
    changed: bool


@dataclass(frozen=True, slots=True)
class FieldLayout:
    slots: tuple[FieldSlot, ...]
    repeated: frozenset[str]


def fields_to_document(
    fields: list[tuple[str, str]], *, prefer_urlsafe: bool = False
) -> tuple[dict[str, Any], FieldLayout]:
    """Build the document and the layout for ``fields`` (see the module docstring).

    ``prefer_urlsafe`` picks the base64 alphabet for re-encoding when a value used none
    of the characters that tell the two apart (query strings favour base64url).
    """
    counts: dict[str, int] = {}
    for name, _ in fields:
        counts[name] = counts.get(name, 0) + 1
    repeated = frozenset(name for name, count in counts.items() if count > 1)
    document: dict[str, Any] = {}
    slots: list[FieldSlot] = []
    seen: dict[str, int] = {}
    for index, (name, text) in enumerate(fields):
        value, encoding = decode_field_value(text, prefer_urlsafe=prefer_urlsafe)
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        if name in repeated:
            document.setdefault(name, []).append(value)
        else:
            document[name] = value
        fingerprint = _fingerprint(value)
        if not _is_canonical(text, encoding, fingerprint):
            fingerprint = b""
        slots.append(FieldSlot(index, name, occurrence, encoding, text, fingerprint))
    return document, FieldLayout(tuple(slots), repeated)


def document_to_fields(document: Any, layout: FieldLayout) -> list[FieldOutput]:
    """The scrubbed fields in their original order, each with its new text.

    Fields the engine added come last as new slots with text encoding.
    """
    if not isinstance(document, dict):
        return []
    fields: list[FieldOutput] = []
    for slot in layout.slots:
        if slot.name not in document:
            continue
        value = document[slot.name]
        if slot.name in layout.repeated:
            if not isinstance(value, list) or slot.occurrence >= len(value):
                continue
            value = value[slot.occurrence]
        fields.append(_output(slot, value))
    known = {slot.name for slot in layout.slots}
    for name, value in document.items():
        if name not in known:
            added = FieldSlot(-1, name, 0, TEXT, "", b"")
            fields.append(FieldOutput(added, encode_field_value(value, TEXT), changed=True))
    return fields


def _fingerprint(value: Any) -> bytes:
    # Canonical JSON tells types apart too: a rule that turned "1" into 1 is a change.
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        # orjson reads deeper nesting than it writes (1024 vs 254 levels).
        raise LimitExceeded("fields", "max_depth", "field value nested too deeply") from None


def _is_canonical(text: str, encoding: FieldEncoding, fingerprint: bytes) -> bool:
    """Whether the field's text holds nothing its decoded value lacks: true for text, for
    canonical JSON (what SDKs send), and for other JSON without duplicate keys."""
    if encoding.kind is FieldKind.TEXT:
        return True
    if encoding.kind is FieldKind.JSON:
        data = text.encode("utf-8")
    else:
        data = _base64_bytes(text, urlsafe=encoding.urlsafe)
    return data == fingerprint or not _has_duplicate_keys(data)


def _has_duplicate_keys(data: bytes) -> bool:
    # Only reached for non-canonical JSON, which SDKs rarely send: the slow parser is fine.
    duplicated = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        keys = [key for key, _ in pairs]
        duplicated = duplicated or len(set(keys)) != len(keys)
        return dict(pairs)

    try:
        json.loads(data, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return True  # cannot tell: re-encoding what the engine saw is always safe
    return duplicated


def _base64_bytes(text: str, *, urlsafe: bool) -> bytes:
    unpadded = _BASE64_LINE_BREAKS.sub("", text.strip().replace(" ", "+")).rstrip("=")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    return base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded)


def _output(slot: FieldSlot, value: Any) -> FieldOutput:
    if _fingerprint(value) == slot.fingerprint:
        return FieldOutput(slot, slot.original, changed=False)
    return FieldOutput(slot, encode_field_value(value, slot.encoding), changed=True)


def events_path_of_fields(document: dict[str, Any], layout: FieldLayout) -> str | None:
    """``"<name>[*]"`` for the first decoded field holding a list of objects, else None."""
    for slot in layout.slots:
        if slot.encoding.kind is FieldKind.TEXT or slot.name in layout.repeated:
            continue
        value = document.get(slot.name)
        if (
            isinstance(value, list)
            and value
            and all(isinstance(item, dict) for item in value)
            and _SIMPLE_NAME.fullmatch(slot.name)
        ):
            return f"{slot.name}[*]"
    return None


def decode_field_value(text: str, *, prefer_urlsafe: bool = False) -> tuple[Any, FieldEncoding]:
    """A field's value and how it was encoded: JSON text, base64(url) JSON, or text."""
    if looks_like_json_container(text):
        value = _parse_container(text.encode())
        if value is not None:
            return value, FieldEncoding(FieldKind.JSON)
    decoded = _decode_base64_json(text, prefer_urlsafe=prefer_urlsafe)
    if decoded is not None:
        return decoded
    return text, TEXT


def encode_field_value(value: Any, encoding: FieldEncoding) -> str:
    """Write a (scrubbed) value back as text in ``encoding``."""
    if encoding.kind is FieldKind.TEXT:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        return orjson.dumps(value).decode()
    data = orjson.dumps(value)
    if encoding.kind is FieldKind.JSON:
        return data.decode()
    encoded = base64.urlsafe_b64encode(data) if encoding.urlsafe else base64.b64encode(data)
    text = encoded.decode("ascii")
    return text if encoding.padded else text.rstrip("=")


def _decode_base64_json(text: str, *, prefer_urlsafe: bool) -> tuple[Any, FieldEncoding] | None:
    # A '+' that the client did not percent-encode arrives as a space in form decoding;
    # line breaks (MIME wraps base64 at 76 columns) are skipped by every base64 decoder, so
    # they must not hide the JSON from the engine.
    candidate = text.strip()
    if " " in candidate:
        candidate = candidate.replace(" ", "+")
    if _BASE64_LINE_BREAKS.search(candidate):
        candidate = _BASE64_LINE_BREAKS.sub("", candidate)
    if len(candidate) < _MIN_BASE64_LENGTH:
        return None
    standard = _BASE64_STANDARD.fullmatch(candidate) is not None
    urlsafe = _BASE64_URLSAFE.fullmatch(candidate) is not None
    if not standard and not urlsafe:
        return None
    use_urlsafe = urlsafe and (not standard or prefer_urlsafe)
    padded = candidate.endswith("=") or (len(candidate) % 4 == 0 and not use_urlsafe)
    unpadded = candidate.rstrip("=")
    try:
        raw = base64.b64decode(
            unpadded + "=" * (-len(unpadded) % 4),
            altchars=b"-_" if urlsafe and not standard else None,
            validate=True,
        )
    except (binascii.Error, ValueError):
        return None
    if raw.lstrip()[:1] not in (b"{", b"["):
        return None
    value = _parse_container(raw)
    if value is None:
        if _looks_like_json_text(raw):
            # Lenient parsers (JavaScript's, Python's) read 1e400 or lone surrogates that
            # orjson refuses: sent on as opaque text, its content would pass unscrubbed.
            raise PayloadError("fields", "base64 value holds JSON that does not parse")
        return None
    return value, FieldEncoding(FieldKind.BASE64_JSON, urlsafe=use_urlsafe, padded=padded)


def _looks_like_json_text(raw: bytes) -> bool:
    """UTF-8 text bracketed like a JSON container: never the chance decoding of a token."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return looks_like_json_container(text)


def _parse_container(data: bytes) -> Any:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict | list) else None
