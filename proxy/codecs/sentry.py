"""Sentry envelopes (``/api/<project>/envelope/``) and legacy store bodies (``/store/``).

An envelope is a JSON header line, then items: a JSON item-header line and a payload of
``length`` bytes (or, without ``length``, up to the next newline), each followed by a
newline (optional after the last one). Each part is scrubbed on its own:

* the envelope header (``dsn``, ``sdk``, ``trace`` with its user fields ...) as a
  document with events path ``None``; its event counts are not added to the request's
  (only items are events), but if the engine drops it, the whole envelope is dropped;
* every JSON item (``event``, ``transaction``, ``session``, ``sessions``, ``user_report``,
  ``feedback``, ``client_report``, ``check_in``, ``span``, ``profile`` ... any type whose
  payload is JSON) as one event, events path ``None``; an item carrying ``item_count``
  with an ``{"items": [...]}`` payload (``log``) has events path ``"items[*]"`` and its
  ``item_count`` is updated. A dropped item disappears;
* non-JSON text items (``statsd``) via ``ctx.scrub_text``;
* ``attachment`` and replay recording items, and any binary payload, per
  ``ctx.attachments``: dropped, kept, or kept with the ``filename`` header scrubbed.

The header of every other item is scrubbed too (as a document, after its payload).
  Attachments go with their event: when the envelope's ``event`` or ``transaction`` is
  dropped, its attachments are dropped as well.

Every written item header carries a recomputed ``length``. The store body is one event:
JSON, or base64 of JSON / of zlib or raw-deflate JSON (written back the same way).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from filters.outcome import LimitExceeded, Outcome, PayloadError
from proxy.codecs.base import AttachmentMode, CodecContext, CodecResult
from proxy.codecs.encoding import decoded_budget, encode_content, inflate_any
from proxy.codecs.json_parse import parse_json

CODEC = "sentry_envelope"
STORE_CODEC = "sentry_store"

ATTACHMENT_TYPES = frozenset({"attachment", "replay_recording", "replay_video"})
"""Item types whose payload is never scrubbed, only dropped or kept."""

EVENT_OWNER_TYPES = frozenset({"event", "transaction"})
"""Item types that own the envelope's attachments."""


@dataclass(slots=True)
class EnvelopeItem:
    header: dict[str, Any]
    payload: bytes


@dataclass(slots=True)
class Envelope:
    header: dict[str, Any]
    items: list[EnvelopeItem]


def scrub_envelope(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub a Sentry envelope; raises ``PayloadError`` for malformed envelopes
    (bad header lines, lengths that overrun the body or miss the newline)."""
    envelope = parse_envelope(body, max_items=ctx.limits.max_parts)
    outcome = Outcome()
    header = ctx.scrub(envelope.header, None)
    outcome.merge(_without_event_counts(header.outcome))
    if header.outcome.all_events_dropped:
        return CodecResult(b"", outcome, empty=True)
    scrubbed = [_scrub_item(item, ctx, outcome) for item in envelope.items]
    kept = _kept_items(envelope.items, scrubbed)
    if outcome.all_events_dropped or (envelope.items and not kept):
        return CodecResult(b"", outcome, empty=True)
    return CodecResult(write_envelope(header.json, kept), outcome)


def parse_envelope(body: bytes, *, max_items: int) -> Envelope:
    """Split an envelope into its header and items (payloads as raw bytes)."""
    line_end = body.find(b"\n")
    header_end = len(body) if line_end < 0 else line_end
    header = _parse_header_line(body[:header_end], "envelope header")
    offset = header_end + 1
    items: list[EnvelopeItem] = []
    while offset < len(body):
        if body[offset : offset + 1] in (b"\n", b"\r"):
            offset += 1  # blank lines between items, as Sentry's own parsers allow
            continue
        if len(items) >= max_items:
            raise LimitExceeded(CODEC, "max_parts", "more envelope items than the limit")
        item, offset = _parse_item(body, offset)
        items.append(item)
    return Envelope(header, items)


def write_envelope(header_json: bytes, items: list[EnvelopeItem]) -> bytes:
    """Serialize an envelope, setting every item's ``length`` to its payload's size."""
    parts = [header_json, b"\n"]
    for item in items:
        item.header["length"] = len(item.payload)
        parts += (orjson.dumps(item.header), b"\n", item.payload, b"\n")
    return b"".join(parts)


def _parse_item(body: bytes, offset: int) -> tuple[EnvelopeItem, int]:
    line_end = body.find(b"\n", offset)
    header_end = len(body) if line_end < 0 else line_end
    header = _parse_header_line(body[offset:header_end], "item header")
    if not isinstance(header.get("type"), str):
        raise PayloadError(CODEC, "item header without a type")
    payload_start = min(header_end + 1, len(body))
    length = header.get("length")
    if length is None:
        next_newline = body.find(b"\n", payload_start)
        payload_end = len(body) if next_newline < 0 else next_newline
    else:
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise PayloadError(CODEC, "item length is not a non-negative integer")
        payload_end = payload_start + length
        if payload_end > len(body):
            raise PayloadError(CODEC, "item length overruns the envelope")
        if payload_end < len(body) and body[payload_end] != ord("\n"):
            raise PayloadError(CODEC, "item payload is not followed by a newline")
    return EnvelopeItem(header, body[payload_start:payload_end]), payload_end + 1


def _parse_header_line(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise PayloadError(CODEC, f"{what} is not a JSON line") from None
    if not isinstance(value, dict):
        raise PayloadError(CODEC, f"{what} is not a JSON object")
    return value


def _scrub_item(item: EnvelopeItem, ctx: CodecContext, outcome: Outcome) -> EnvelopeItem | None:
    """The scrubbed item, or ``None`` when it is dropped."""
    if item.header["type"] in ATTACHMENT_TYPES or not _is_text(item.payload):
        return _scrub_attachment(item, ctx, outcome)
    stripped = item.payload.strip()
    if stripped[:1] in (b"{", b"["):
        scrubbed = _scrub_json_item(item, ctx, outcome)
    elif not stripped:
        scrubbed = item
    else:
        text, text_outcome = ctx.scrub_text(item.payload.decode("utf-8"))
        outcome.merge(text_outcome)
        scrubbed = EnvelopeItem(item.header, text.encode("utf-8"))
    return None if scrubbed is None else _with_scrubbed_header(scrubbed, ctx, outcome)


def _is_text(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _with_scrubbed_header(
    item: EnvelopeItem, ctx: CodecContext, outcome: Outcome
) -> EnvelopeItem | None:
    """The item with its header scrubbed like a document: SDKs put only types and sizes
    there, but whatever else a header carries leaves with it. An item whose header the
    engine drops is dropped."""
    result = ctx.scrub(item.header, None)
    outcome.merge(_without_event_counts(result.outcome))
    if result.outcome.all_events_dropped or not isinstance(result.value, dict):
        return None
    return EnvelopeItem(result.value, item.payload)


def _scrub_json_item(
    item: EnvelopeItem, ctx: CodecContext, outcome: Outcome
) -> EnvelopeItem | None:
    document = parse_json(item.payload, CODEC)
    container = (
        "item_count" in item.header
        and isinstance(document, dict)
        and isinstance(document.get("items"), list)
    )
    result = ctx.scrub(document, "items[*]" if container else None)
    outcome.merge(result.outcome)
    if result.outcome.all_events_dropped:
        return None
    if container:
        items = result.value.get("items") if isinstance(result.value, dict) else None
        item.header["item_count"] = len(items) if isinstance(items, list) else 0
    return EnvelopeItem(item.header, result.json)


def _scrub_attachment(
    item: EnvelopeItem, ctx: CodecContext, outcome: Outcome
) -> EnvelopeItem | None:
    if ctx.attachments is AttachmentMode.DROP:
        return None
    filename = item.header.get("filename")
    if ctx.attachments is AttachmentMode.KEEP_SCRUB_FILENAME and isinstance(filename, str):
        scrubbed, filename_outcome = ctx.scrub_text(filename)
        outcome.merge(filename_outcome)
        item.header["filename"] = scrubbed
    return item


def _kept_items(
    originals: list[EnvelopeItem], scrubbed: list[EnvelopeItem | None]
) -> list[EnvelopeItem]:
    owner_dropped = any(
        item is None and original.header["type"] in EVENT_OWNER_TYPES
        for original, item in zip(originals, scrubbed, strict=True)
    )
    return [
        item
        for original, item in zip(originals, scrubbed, strict=True)
        if item is not None and not (owner_dropped and original.header["type"] == "attachment")
    ]


def _without_event_counts(outcome: Outcome) -> Outcome:
    return Outcome(
        rule_hits=outcome.rule_hits,
        detector_hits=outcome.detector_hits,
        changes=outcome.changes,
    )


def scrub_store(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub a legacy store body: one event as JSON, or base64 of JSON, or base64 of
    zlib / raw-deflate JSON (as old SDKs sent it); written back in the same form."""
    document_bytes, layers = _decode_store_body(body, ctx)
    document = parse_json(document_bytes, STORE_CODEC)
    result = ctx.scrub(document, None)
    if result.outcome.all_events_dropped:
        return CodecResult(b"", result.outcome, empty=True)
    if layers is None:
        return CodecResult(result.json, result.outcome)
    return CodecResult(base64.b64encode(encode_content(result.json, layers)), result.outcome)


def _decode_store_body(body: bytes, ctx: CodecContext) -> tuple[bytes, tuple[str, ...] | None]:
    """The JSON bytes, and the compression layers under a base64 wrapping (``None`` when
    the body was plain JSON)."""
    stripped = body.strip()
    if stripped.removeprefix(b"\xef\xbb\xbf")[:1] in (b"{", b"["):
        return stripped, None
    try:
        raw = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(STORE_CODEC, "body is neither JSON nor base64") from None
    if raw.lstrip()[:1] == b"{":
        return raw, ()
    inflated, layer = inflate_any(raw, decoded_budget(len(body), ctx.limits))
    return inflated, (layer,)
