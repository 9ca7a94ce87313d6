"""Plain-text bodies that are not JSON (log lines, ``text/plain`` beacons of free text).

The whole body is one string scrubbed by ``ctx.scrub_text``; it is not an event, so no
drop-event rule applies. The body must be UTF-8.
"""

from __future__ import annotations

from filters.outcome import PayloadError
from proxy.codecs.base import CodecContext, CodecResult

CODEC = "text"


def scrub_text_body(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub a UTF-8 text body; raises ``PayloadError`` if it is not UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError(CODEC, "body is not UTF-8 text") from None
    scrubbed, outcome = ctx.scrub_text(text)
    return CodecResult(scrubbed.encode("utf-8"), outcome)
