"""The contract every wire-format codec follows.

A codec turns one request body into one or more JSON-like documents, asks the engine to
scrub each (``ctx.scrub(document, events)``), and writes the scrubbed documents back in
the same wire format. It never forwards anything it could not parse: it raises
:class:`filters.outcome.PayloadError` (or ``LimitExceeded``) instead, with a message that
names the codec and the reason, never the content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from filters.outcome import Outcome
from filters.result import ScrubResult

ScrubFunction = Callable[[Any, str | None], ScrubResult]
"""``scrub(document, events)``: ``events`` is an event-path string such as ``"batch[*]"``,
``"[*]"`` or ``None`` (the document is one event). See :mod:`filters.events`."""


class AttachmentMode(Enum):
    """What happens to binary attachments (multipart files, Sentry attachment items)."""

    DROP = "drop"
    KEEP = "keep"
    KEEP_SCRUB_FILENAME = "keep-scrub-filename"


@dataclass(frozen=True, slots=True)
class CodecLimits:
    """Bounds a codec enforces while decoding (the engine checks depth/values itself)."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_decoded_bytes: int = 50 * 1024 * 1024
    max_ratio: int = 100
    max_parts: int = 1000


@dataclass(slots=True)
class CodecContext:
    """Everything a codec needs for one request. ``scrub`` is the route's plan bound to
    the engine; ``scrub_text`` scrubs one free-text string (a filename, a form field that
    is not JSON); ``scrub_query`` scrubs a query string's pairs (used by the query codec)."""

    scrub: ScrubFunction
    scrub_text: Callable[[str], tuple[str, Outcome]]
    content_type: str
    path: str
    limits: CodecLimits = field(default_factory=CodecLimits)
    attachments: AttachmentMode = AttachmentMode.DROP


@dataclass(slots=True)
class CodecResult:
    """The re-encoded body. ``empty`` is true when every event was dropped, so the proxy
    answers like a drop and sends nothing."""

    body: bytes
    outcome: Outcome
    empty: bool = False
    content_type: str | None = None


class FormatCodec(Protocol):
    name: str

    def scrub(self, body: bytes, ctx: CodecContext) -> CodecResult: ...
