"""What surrounds a candidate: framing pieces for patterns and boundary checks for validators.

Validators decide "is this a whole token?" by looking at the bytes next to a candidate. In
canonical JSON a string's escapes put letters and hex digits there that stand for other
characters: the ``n`` of ``\\n`` before ``john@x.com`` is a line break, not part of a word.
Every check here is escape-aware, so the same rule works on plain text and on JSON. (In
plain text a literal backslash-n is treated the same way, which is what a reader expects
of a log line.) Boundary checks read escapes at every level of escaping: text that was
JSON-encoded once more (a double-escaped log line, or any text inside a JSON string)
doubles each backslash run, so the letter after a run of any length is an escape letter
at some level (``\\\\n`` in JSON is the ``\\n`` a text reader sees as a line break).

Escapes that end in a digit (``\\u0001``) cannot be told from the digits of a token by a
pattern's one-byte lead: digit-led detectors add an :func:`after_unicode_escape` pattern
and skip the escape with :func:`skip_unicode_escape`.
"""

from __future__ import annotations

import re
from typing import Final

ANY: Final = rb"(?s:.)"
"""A lead or trail byte that may be anything (the scanner pads the buffer with ``\\n``)."""

WHITESPACE: Final = rb"\t\n\x0b\x0c\r "
"""ASCII whitespace as pattern text for a character class (spelled out because hyperscan
and RE2 disagree on ``\\s``)."""
WHITESPACE_BYTES: Final = frozenset(b"\t\n\x0b\x0c\r ")

_BACKSLASH: Final = 0x5C
_LOWER_U: Final = 0x75
_PERCENT: Final = 0x25
ALNUM: Final = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
DIGITS: Final = frozenset(b"0123456789")
HEX: Final = frozenset(b"0123456789ABCDEFabcdef")


def framed(token: bytes, trail: bytes, lead: bytes = ANY) -> bytes:
    """A framed pattern: one ``lead`` byte, the ``token``, one ``trail`` byte."""
    return lead + b"(?:" + token + b")" + trail


def literal(text: bytes) -> bytes:
    """``text`` as a pattern that matches it literally in hyperscan and RE2 alike."""
    return b"".join(bytes((byte,)) if byte in ALNUM else b"\\x%02x" % byte for byte in text)


def byte_table(byte_class: bytes) -> bytes:
    """A 256-byte lookup table, 1 for each byte the character class ``byte_class`` (pattern
    text such as ``rb"[^a-z]"``) matches, else 0: what :func:`run_end` reads."""
    matches = re.compile(byte_class, re.DOTALL).fullmatch
    return bytes(0 if matches(bytes((byte,))) is None else 1 for byte in range(256))


def run_end(buffer: bytes, start: int, end: int, stops: bytes) -> int:
    """The first offset in ``[start, end)`` whose byte is marked in ``stops`` (a
    :func:`byte_table`), or ``end``: where a run of unmarked bytes ends. (A byte loop:
    compiled, it is several times faster than a regular expression's match.)"""
    index = start
    while index < end and not stops[buffer[index]]:
        index += 1
    return index


def run_start(buffer: bytes, start: int, end: int, stops: bytes) -> int:
    """:func:`run_end` backwards: the offset after the last byte in ``[start, end)``
    marked in ``stops``, or ``start``: where a run of unmarked bytes that ends at ``end``
    begins."""
    index = end
    while index > start and not stops[buffer[index - 1]]:
        index -= 1
    return index


def escape_span(buffer: bytes, index: int) -> tuple[int, int] | None:
    """The ``[start, end)`` of the backslash escape that covers ``buffer[index]``, or None.

    An escape is ``\\X`` (two bytes) or ``\\uXXXX`` (six). Whether a backslash starts an
    escape depends on the run of backslashes it ends: ``\\\\n`` is an escaped backslash
    followed by a plain ``n``.
    """
    last = buffer.rfind(b"\\", max(0, index - 5), index + 1)
    if last < 0:
        return None
    first = last
    while first > 0 and buffer[first - 1] == _BACKSLASH:
        first -= 1
    if (last - first) % 2 == 1:
        # ``buffer[last]`` is the second half of an escaped backslash.
        return (last - 1, last + 1) if index == last else None
    is_unicode = last + 1 < len(buffer) and buffer[last + 1] == _LOWER_U
    end = last + (6 if is_unicode else 2)
    return (last, end) if index < end else None


def is_escape_tail(buffer: bytes, index: int) -> bool:
    """True when ``buffer[index]`` is the letter or a hex digit of an escape sequence at
    some level of escaping: right after a backslash run of any length, or one of the four
    hex digits of ``\\uXXXX`` after one (``\\\\n`` counts: in JSON it is the literal
    ``\\n`` of the text, which plain-text scrubbing reads as a line break)."""
    if buffer[index] == _BACKSLASH:
        return False
    last = buffer.rfind(b"\\", max(0, index - 5), index)
    if last < 0:
        return False
    if last == index - 1:
        return True
    return buffer[last + 1] == _LOWER_U and _is_hex_run(buffer, last + 2, last + 6)


def escape_tail_end(buffer: bytes, index: int) -> int:
    """``index``, or where the escape ends when ``buffer[index]`` is one of its letters or
    hex digits (see :func:`is_escape_tail`)."""
    if not is_escape_tail(buffer, index):
        return index
    last = buffer.rfind(b"\\", max(0, index - 5), index)
    return (
        last + 6
        if buffer[last + 1] == _LOWER_U and _is_hex_run(buffer, last + 2, last + 6)
        else index + 1
    )


def _is_hex_run(buffer: bytes, start: int, end: int) -> bool:
    return end <= len(buffer) and all(byte in HEX for byte in buffer[start:end])


def after_unicode_escape(token: bytes, trail: bytes) -> bytes:
    """A framed pattern for ``token`` right after a ``\\uXXXX`` escape whose last hex
    digit is a decimal digit (``\\u0001``: how canonical JSON writes a control
    character), which a digit-led pattern's ``[^0-9]`` lead cannot tell from the token.
    The lead is the backslash; the candidate starts at the ``u`` (see
    :func:`skip_unicode_escape`)."""
    return framed(rb"u[0-9A-Fa-f]{3}[0-9](?:" + token + rb")", trail=trail, lead=rb"\\")


def skip_unicode_escape(buffer: bytes, start: int) -> int:
    """Where the token of a candidate starts: after the ``uXXXX`` of an
    :func:`after_unicode_escape` candidate, else at ``start``."""
    return start + 5 if buffer[start] == _LOWER_U else start


def _is_percent_escape_end(buffer: bytes, index: int) -> bool:
    """True when ``buffer[index]`` ends a URL percent escape (``%3D``)."""
    return (
        index >= 2
        and buffer[index - 2] == _PERCENT
        and buffer[index - 1] in HEX
        and buffer[index] in HEX
    )


def continues_before(buffer: bytes, start: int, chars: frozenset[int] = ALNUM) -> bool:
    """True when the byte before ``start`` belongs to ``chars`` and so would make the
    candidate part of a longer token. Escape letters and percent escapes do not count."""
    index = start - 1
    if index < 0 or buffer[index] not in chars:
        return False
    return not (is_escape_tail(buffer, index) or _is_percent_escape_end(buffer, index))


def continues_after(buffer: bytes, end: int, chars: frozenset[int] = ALNUM) -> bool:
    """True when the byte at ``end`` belongs to ``chars`` (the token would go on)."""
    return end < len(buffer) and buffer[end] in chars


def dotted_continues_before(buffer: bytes, start: int, separators: bytes = b".") -> bool:
    """True when the candidate is preceded by ``<digit><separator>``, i.e. it is the tail
    of a longer dotted run such as ``1.2.3.4.5`` or a decimal fraction."""
    return (
        start >= 2
        and buffer[start - 1] in separators
        and buffer[start - 2] in DIGITS
        and not is_escape_tail(buffer, start - 2)
    )


def dotted_continues_after(buffer: bytes, end: int, separators: bytes = b".") -> bool:
    """True when the candidate is followed by ``<separator><digit>``."""
    return end + 1 < len(buffer) and buffer[end] in separators and buffer[end + 1] in DIGITS
