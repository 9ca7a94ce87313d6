"""Binary bodies of no known format: nothing in them can be scrubbed.

Fail closed: a ``scrub`` route never forwards bytes it could not look into. A route that
must pass such bodies uses the category mode ``forward``, which skips codecs entirely.
"""

from __future__ import annotations

from filters.outcome import PayloadError
from proxy.codecs.base import CodecContext, CodecResult

CODEC = "binary"


def scrub_binary(body: bytes, ctx: CodecContext) -> CodecResult:
    """Always raises ``PayloadError``."""
    raise PayloadError(CODEC, "binary body of unknown format cannot be scrubbed")
