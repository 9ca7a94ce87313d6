"""JSON bodies: one event, a top-level array of events, or a Segment-style ``batch``.

The document is the parsed body itself. Its events path is:

* ``"batch[*]"`` for an object whose ``batch`` is a list (Segment, RudderStack ...); the
  other keys are the envelope,
* ``"[*]"`` for a top-level array,
* ``None`` (the body is one event) for anything else.

The scrubbed body is the engine's canonical JSON bytes as they are (no re-serialization).
``text/plain`` bodies that carry JSON (``navigator.sendBeacon``) go through here too.
"""

from __future__ import annotations

from typing import Any

from proxy.codecs.base import CodecContext, CodecResult
from proxy.codecs.json_parse import parse_json

CODEC = "json"

BATCH_KEYS: tuple[str, ...] = ("batch",)
"""Keys of an object that hold its list of events, tried in order."""


def scrub_json(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub a JSON body; raises ``PayloadError`` if it is not valid JSON."""
    document = parse_json(body, CODEC)
    result = ctx.scrub(document, events_path_of(document))
    if result.outcome.all_events_dropped:
        return CodecResult(b"", result.outcome, empty=True)
    return CodecResult(result.json, result.outcome)


def events_path_of(document: Any) -> str | None:
    """The events path for a parsed JSON body (see the module docstring)."""
    if isinstance(document, list):
        return "[*]"
    if isinstance(document, dict):
        for key in BATCH_KEYS:
            if isinstance(document.get(key), list):
                return f"{key}[*]"
    return None
