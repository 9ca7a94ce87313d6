"""Newline-delimited JSON: one JSON value per line.

The document is the list of the lines' values (blank lines skipped) and its events path
is ``"[*]"``: each line is one event. The scrubbed body is one compact JSON value per
line, with a trailing newline when the input had one.
"""

from __future__ import annotations

from typing import Any

import orjson

from filters.outcome import PayloadError
from proxy.codecs.base import CodecContext, CodecResult

CODEC = "ndjson"
EVENTS = "[*]"


def scrub_ndjson(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub an NDJSON body; raises ``PayloadError`` naming the first invalid line."""
    document = parse_lines(body)
    result = ctx.scrub(document, EVENTS)
    if result.outcome.all_events_dropped:
        return CodecResult(b"", result.outcome, empty=True)
    return CodecResult(
        write_lines(result.value, trailing_newline=body.endswith(b"\n")), result.outcome
    )


def parse_lines(body: bytes) -> list[Any]:
    """The values of the non-blank lines of ``body`` (``\\n`` or ``\\r\\n`` endings)."""
    values: list[Any] = []
    for number, line in enumerate(body.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            values.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise PayloadError(CODEC, f"invalid JSON on line {number}") from None
    return values


def write_lines(values: list[Any], *, trailing_newline: bool) -> bytes:
    """One compact JSON value per line."""
    if not isinstance(values, list):
        raise PayloadError(CODEC, "scrubbed document is not a list of lines")
    text = b"\n".join(orjson.dumps(value) for value in values)
    if trailing_newline and values:
        text += b"\n"
    return text
