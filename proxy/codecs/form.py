"""``application/x-www-form-urlencoded`` bodies.

The document is a dict of the fields (see :mod:`proxy.codecs.fields`: repeated names map
to lists, JSON and base64-JSON values are decoded), events path ``"<name>[*]"`` for a
field that holds a list of event objects (Mixpanel's ``data=``), else ``None``. Written
back in the same field order and encodings; untouched pairs are copied byte for byte.
"""

from __future__ import annotations

from filters.outcome import PayloadError
from proxy.codecs.base import CodecContext, CodecResult
from proxy.codecs.urlencoded import scrub_urlencoded

CODEC = "form"


def scrub_form(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub a form body; raises ``PayloadError`` if it is not UTF-8 text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError(CODEC, "form body is not UTF-8") from None
    # Standard base64 is what form-posting SDKs (Mixpanel) use when a value does not say.
    scrubbed = scrub_urlencoded(text, ctx, codec=CODEC, prefer_urlsafe=False)
    if scrubbed.empty:
        return CodecResult(b"", scrubbed.outcome, empty=True)
    return CodecResult(scrubbed.text.encode("utf-8"), scrubbed.outcome)
