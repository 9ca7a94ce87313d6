"""One request body through the scrub pipeline, as the server and ``scrubgate scrub`` share it:
Content-Encoding → format → codec + engine → same format → same encoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from filters.outcome import Outcome
from filters.result import ScrubResult
from proxy.codecs.base import AttachmentMode, CodecContext, CodecLimits
from proxy.codecs.detect import detect_format
from proxy.codecs.encoding import decode_content, encode_content
from proxy.codecs.query import scrub_query
from proxy.codecs.registry import scrub_body
from proxy.settings import Limits, Route

DocumentObserver = Callable[[ScrubResult], None]
"""Called with every scrubbed document (the audit log lists the fields that leave)."""


@dataclass(slots=True)
class Scrubbed:
    """What to send upstream. ``body`` is ``None`` when every event was dropped."""

    body: bytes | None
    query: str
    outcome: Outcome

    @property
    def empty(self) -> bool:
        return self.body is None


def codec_limits(limits: Limits) -> CodecLimits:
    return CodecLimits(
        max_body_bytes=limits.max_body_bytes,
        max_decoded_bytes=limits.max_decoded_bytes,
        max_ratio=limits.max_ratio,
        max_parts=limits.max_parts,
    )


def scrub_request(
    route: Route,
    limits: Limits,
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    path: str,
    query: str = "",
    explain: bool = False,
    observe: DocumentObserver | None = None,
) -> Scrubbed:
    """Scrub a request's query string and body exactly as they would be forwarded.

    Raises :class:`filters.outcome.PayloadError` (or ``LimitExceeded``) for input the
    route cannot parse; nothing of such a request may be forwarded.
    """
    plan = route.plan
    assert plan is not None, "only scrub routes have a plan"

    def scrub(document: Any, events: str | None) -> ScrubResult:
        result = plan.scrub(document, events, explain=explain)
        if observe is not None:
            observe(result)
        return result

    bounds = codec_limits(limits)
    ctx = CodecContext(
        scrub=scrub,
        scrub_text=plan.scrub_text,
        content_type=content_type or "",
        path=path,
        limits=bounds,
        attachments=AttachmentMode(route.attachments),
    )
    outcome = Outcome(changes=[] if explain else None)
    scrubbed_query = query
    if query:
        scrubbed_query, query_outcome = scrub_query(query, ctx)
        outcome.merge(query_outcome)
    if not body:
        return Scrubbed(body=body, query=scrubbed_query, outcome=outcome)
    decoded, layers = decode_content(body, content_encoding, bounds)
    body_format = (
        route.format if route.format != "auto" else detect_format(content_type, path, decoded[:512])
    )
    result = scrub_body(body_format, decoded, ctx)
    outcome.merge(result.outcome)
    if result.empty:
        return Scrubbed(body=None, query=scrubbed_query, outcome=outcome)
    return Scrubbed(body=encode_content(result.body, layers), query=scrubbed_query, outcome=outcome)
