"""``name=value&...`` text (form bodies and query strings) scrubbed as a fields document.

Pairs are split on ``&`` and the first ``=``, then percent/plus-decoded as UTF-8; empty
pieces (``a=1&&b=2``) are ignored. The document and its events path are those of
:mod:`proxy.codecs.fields`. On the way back a pair whose value did not change is copied
byte for byte (name, ``=`` or its absence, and percent-encoding as the client wrote them);
a changed one is written ``name=value`` with its original name and a plus-encoded value.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from filters.outcome import LimitExceeded, Outcome, PayloadError
from proxy.codecs.base import CodecContext
from proxy.codecs.fields import (
    FieldOutput,
    document_to_fields,
    events_path_of_fields,
    fields_to_document,
)


@dataclass(frozen=True, slots=True)
class RawPair:
    """One pair: its decoded name and value, and its text as received."""

    name: str
    value: str
    raw: str


@dataclass(frozen=True, slots=True)
class ScrubbedText:
    text: str
    outcome: Outcome
    empty: bool


def scrub_urlencoded(
    text: str, ctx: CodecContext, *, codec: str, prefer_urlsafe: bool
) -> ScrubbedText:
    """Scrub urlencoded ``text`` as one document; ``empty`` means every event was dropped.

    Raises ``PayloadError`` for values that are not UTF-8 and ``LimitExceeded`` for more
    pairs than ``ctx.limits.max_parts``.
    """
    pairs = parse_urlencoded(text, codec=codec, max_fields=ctx.limits.max_parts)
    if not pairs:
        return ScrubbedText(text, Outcome(), empty=False)
    fields = [(pair.name, pair.value) for pair in pairs]
    document, layout = fields_to_document(fields, prefer_urlsafe=prefer_urlsafe)
    result = ctx.scrub(document, events_path_of_fields(document, layout))
    if result.outcome.all_events_dropped:
        return ScrubbedText("", result.outcome, empty=True)
    outputs = document_to_fields(result.value, layout)
    return ScrubbedText(write_urlencoded(outputs, pairs), result.outcome, empty=False)


def parse_urlencoded(text: str, *, codec: str, max_fields: int) -> list[RawPair]:
    """Split and decode ``text`` into pairs, at most ``max_fields`` of them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from a caller's lenient decoding) cannot become JSON strings.
        raise PayloadError(codec, "text is not valid Unicode") from None
    pairs: list[RawPair] = []
    for piece in text.split("&"):
        if not piece:
            continue
        if len(pairs) >= max_fields:
            raise LimitExceeded(codec, "max_parts", "more fields than the configured limit")
        name, _, value = piece.partition("=")
        pairs.append(RawPair(_unquote(name, codec), _unquote(value, codec), piece))
    return pairs


def write_urlencoded(outputs: list[FieldOutput], pairs: list[RawPair]) -> str:
    """Join scrubbed fields; unchanged ones keep their original text."""
    pieces: list[str] = []
    for output in outputs:
        index = output.slot.index
        if index < 0:
            pieces.append(f"{quote_plus(output.slot.name)}={quote_plus(output.text)}")
        elif not output.changed:
            pieces.append(pairs[index].raw)
        else:
            raw_name = pairs[index].raw.partition("=")[0]
            pieces.append(f"{raw_name}={quote_plus(output.text)}")
    return "&".join(pieces)


def _unquote(text: str, codec: str) -> str:
    try:
        return unquote_plus(text, errors="strict")
    except UnicodeDecodeError:
        raise PayloadError(codec, "field is not UTF-8 after percent-decoding") from None
