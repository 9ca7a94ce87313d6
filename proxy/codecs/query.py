"""Query strings of any request (tracking pixels: ``?e=pv&url=...&uid=...&cx=eyJ...``).

Same document as a form (:mod:`proxy.codecs.fields`), re-encoded in the same order.
"""

from __future__ import annotations

from filters.outcome import Outcome
from proxy.codecs.base import CodecContext
from proxy.codecs.urlencoded import scrub_urlencoded

CODEC = "query"


def scrub_query(query: str, ctx: CodecContext) -> tuple[str, Outcome]:
    """Scrub a raw query string (without ``?``, still percent-encoded: aiohttp's
    ``request.rel_url.raw_query_string``, not the decoded ``query_string``).

    Returns the new raw query and the outcome. When ``outcome.all_events_dropped`` the
    query is ``""`` and the request should be handled as dropped. An empty query is
    returned as is without calling the engine. Raises ``PayloadError``/``LimitExceeded``.
    """
    # Pixel trackers (Snowplow's cx/ue_px) use base64url, so that is the default alphabet.
    scrubbed = scrub_urlencoded(query, ctx, codec=CODEC, prefer_urlsafe=True)
    return scrubbed.text, scrubbed.outcome
