"""Fitting detector spans onto canonical JSON so that the output is always valid JSON.

The scanner runs detectors over the bytes ``orjson.dumps`` writes: no whitespace, UTF-8,
and inside strings only the escapes ``\\"`` ``\\\\`` ``\\n`` ``\\r`` ``\\t`` ``\\b`` ``\\f``
and ``\\u00XX``. A span must land in one of two places:

* inside one string literal: it is clipped so that it never cuts an escape sequence in
  half (an e-mail candidate that starts on the ``n`` of ``\\n`` starts after it) and never
  runs past the closing quote; the replacement goes in unquoted;
* on one bare scalar (``{"n":4111111111111111}``): the span grows to the whole number and
  the replacement goes in as a quoted string, so ``{"n":"[card]"}`` stays valid.

Anything else (a span on structure such as ``:`` or ``{``) is dropped. String-or-not is
decided exactly: cheaply when the span holds a byte that only a string can contain or
cannot be a whole bare scalar where it stands, else by counting unescaped quotes
(incrementally, so a buffer is counted at most once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from filters.detectors.context import escape_span

_QUOTE: Final = 0x22
_COLON: Final = 0x3A
_BACKSLASH: Final = 0x5C
_SCALAR: Final = frozenset(b"0123456789+-.eEtruflsan")
"""Bytes of a bare JSON number, ``true``, ``false`` or ``null``."""
SCALAR_BYTES: Final = bytes(sorted(_SCALAR))
"""The same bytes, for ``bytes.translate`` and byte tables."""
_OUTSIDE_STRINGS: Final = bytes(sorted(_SCALAR | frozenset(b'{}[]:,"')))
"""Every byte canonical JSON can hold outside a string literal."""
_JSON_SCALAR: Final = re.compile(
    rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null"
)

Placed = tuple[int, int, bool]
"""``(start, end, quoted)``: where the replacement goes and whether it needs quotes."""


class JsonSpans:
    """Places spans of one canonical JSON buffer. Call :meth:`place` in increasing order
    of ``start`` (the quote count is carried forward between calls)."""

    __slots__ = ("_buffer", "_cursor", "_has_escapes", "_inside")

    def __init__(self, buffer: bytes) -> None:
        self._buffer = buffer
        self._cursor = 0
        self._inside = False
        self._has_escapes = b"\\" in buffer

    def place(self, start: int, end: int) -> Placed | None:
        """Where ``[start, end)`` may be replaced, or None if nowhere."""
        segment = self._buffer[start:end]
        if b'"' not in segment:
            if segment.translate(None, _OUTSIDE_STRINGS):
                # A byte only strings hold, and no quote to leave the string by.
                return self._clip_escapes(start, end)
            if not segment.translate(None, SCALAR_BYTES):
                scalar = self._possible_bare_scalar(start, end)
                if scalar is None or self._inside_string(start):
                    return self._clip_escapes(start, end)
                return (scalar[0], scalar[1], True)
        # Structure or quotes inside the span (only admin patterns do that).
        if self._inside_string(start):
            return self._clip_escapes(start, self._string_end(start, end))
        return self._bare_scalar(start)

    def _possible_bare_scalar(self, start: int, end: int) -> tuple[int, int] | None:
        """The scalar token around a span of scalar bytes if it could stand outside a
        string: a whole number or literal between ``:``/``[``/``,`` and ``,``/``]``/``}``.
        None means the span is certainly inside a string (``"v1.2.3.4"``); otherwise the
        rare ambiguity (``"a:4111111111111111,b"``) is settled by counting quotes."""
        buffer = self._buffer
        low, high = self._scalar_run(start, end)
        if low > 0 and buffer[low - 1] not in b":[,":
            return None
        if high < len(buffer) and buffer[high] not in b",]}":
            return None
        return (low, high) if _JSON_SCALAR.fullmatch(buffer, low, high) else None

    def _inside_string(self, position: int) -> bool:
        if position < self._cursor:
            self._cursor, self._inside = 0, False
        buffer = self._buffer
        low = self._cursor
        while low > 0 and buffer[low - 1] == _BACKSLASH:
            low -= 1  # count a backslash run that straddles the cursor as a whole
        quotes = buffer.count(b'"', low, position)
        # A quote is escaped when an odd run of backslashes precedes it. Counting the
        # quotes preceded by at least k backslashes for k = 1, 2, ... and alternating the
        # sign gives the number of quotes preceded by an odd run.
        escaped, sign, run = 0, 1, b"\\"
        while count := buffer.count(run + b'"', low, position):
            escaped += sign * count
            sign, run = -sign, run + b"\\"
        if (quotes - escaped) % 2:
            self._inside = not self._inside
        self._cursor = position
        return self._inside

    def _string_end(self, start: int, end: int) -> int:
        """``end``, or the closing quote of the string holding ``start`` if that is first."""
        quote = _closing_quote(self._buffer, start, end)
        return end if quote < 0 else quote

    def _clip_escapes(self, start: int, end: int) -> Placed | None:
        if not self._has_escapes:
            return (start, end, False)
        buffer = self._buffer
        if buffer.rfind(b"\\", max(0, start - 5), start + 1) >= 0:
            span = escape_span(buffer, start)
            if span is not None and span[0] < start:
                start = span[1]
        if end > start and buffer.rfind(b"\\", max(0, end - 6), end) >= 0:
            span = escape_span(buffer, end - 1)
            if span is not None and span[1] > end:
                end = span[0]
        return (start, end, False) if start < end else None

    def _scalar_run(self, start: int, end: int) -> tuple[int, int]:
        buffer = self._buffer
        low = start
        while low > 0 and buffer[low - 1] in _SCALAR:
            low -= 1
        high = end
        while high < len(buffer) and buffer[high] in _SCALAR:
            high += 1
        return low, high

    def _bare_scalar(self, start: int) -> Placed | None:
        if start >= len(self._buffer) or self._buffer[start] not in _SCALAR:
            return None
        low, high = self._scalar_run(start, start)
        return (low, high, True)


def any_in_object_key(buffer: bytes, ends: Iterable[int]) -> bool:
    """Whether any of the string literals holding the bytes just before each of ``ends``
    is an object key: in canonical JSON, a string whose closing quote is followed by
    ``:``. (One call for all the spans of a pass.)"""
    size = len(buffer)
    for end in ends:
        quote = _closing_quote(buffer, end, size)
        if 0 <= quote < size - 1 and buffer[quote + 1] == _COLON:
            return True
    return False


def _closing_quote(buffer: bytes, start: int, end: int) -> int:
    """The first unescaped quote in ``buffer[start:end]``, or -1."""
    quote = buffer.find(b'"', start, end)
    # The escape count only after a backslash: most quotes follow none.
    while quote > 0 and buffer[quote - 1] == _BACKSLASH and _is_escaped(buffer, quote):
        quote = buffer.find(b'"', quote + 1, end)
    return quote


def _is_escaped(buffer: bytes, position: int) -> bool:
    index = position
    while index > 0 and buffer[index - 1] == _BACKSLASH:
        index -= 1
    return (position - index) % 2 == 1
