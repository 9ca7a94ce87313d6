"""The multi-pattern scanner: every detector's patterns in one database, one pass per buffer.

A :class:`Scanner` is compiled once from a sequence of detectors (at plan compile time)
and then only read. Per buffer it

1. scans ``b"\\n" + buffer + b"\\n"`` once with all patterns (hyperscan; google-re2 where
   hyperscan cannot be imported, e.g. on ARM: same results, slower);
2. keeps, per pattern and start offset, the longest match, and per pattern a left-to-right
   run of matches whose tokens do not overlap (their framing bytes may);
3. hands each candidate to its detector's validator, the only Python work per candidate;
4. fits the validated spans to the buffer kind (in JSON: never cut an escape, quote a
   replacement that stands for a bare number; see :mod:`filters.detectors.json_spans`),
   drops spans that fall inside a replacement already in the buffer, and merges
   overlapping spans (the union is replaced once, named after the span that starts first,
   the longest on ties, then the detector listed first);
5. splices the replacements in; if a replacement may change how its neighbours read
   (see :func:`_settled`), scans the result again, at most ``_MAX_PASSES`` times.

The scanner is not thread-safe: it owns one hyperscan scratch space. A worker process
scans on one thread; give each thread its own scanner if that ever changes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, Literal, Protocol

import orjson
import re2

from filters.detectors import replacements
from filters.detectors.base import BufferKind, Detector, Hit, Span, Validator
from filters.detectors.context import WHITESPACE_BYTES, is_escape_tail, run_end
from filters.detectors.json_spans import SCALAR_BYTES, JsonSpans, any_in_object_key

try:  # hyperscan ships x86-64 wheels only
    import hyperscan
except ImportError:  # pragma: no cover - exercised on ARM
    hyperscan = None  # type: ignore[assignment]

Backend = Literal["auto", "hyperscan", "re2"]

_PAD: Final = b"\n"
_PROTECTED_MAX: Final = 64
_CONTEXT_REACH: Final = 8
"""How far (bytes) a validator's look at a candidate's surroundings can be changed by a
replacement: escape and dotted-run checks look 2-6 bytes out, the phone calling-code
check 6. (The version-word and URL-authority checks look further, at text no
replacement creates or removes.) Wider costs a second pass on common text: the " or
call " between an e-mail and a rejected phone number is 9 bytes."""
_REJECTED_REACH: Final = 512
"""Rejected candidates starting this far before a hit are not looked at again."""
_MAX_PASSES: Final = 8
"""Passes after which :meth:`Scanner.redact` stops even if unsettled: a bound on the
work an adversarial buffer can cause (a chain of glued tokens, each of which only reads
as a token once its neighbour is replaced, settles one token per pass)."""
# Bytes next to a replaced span that cannot change what is found around it: no token
# ends with one of _SAFE_BEFORE and none starts with one of _SAFE_AFTER (the opening
# bracket of "(415) 555-2671", the "/" of "/home/...", the ":" of "::1" can).
_SAFE_BEFORE: Final = WHITESPACE_BYTES | frozenset(b"\"',;([{<>&|!?#*=")
_SAFE_AFTER: Final = WHITESPACE_BYTES | frozenset(b"\"',;)]}>&|!?#*=[{<\\")
_STRING_ONLY: Final = 0
_SCALAR: Final = 1
_STRUCTURE: Final = 2
_STRING_EDGE: Final = 3
_BYTE_CLASS: Final = bytes(
    _STRING_EDGE
    if byte in b'"\\'
    else _SCALAR
    if byte in SCALAR_BYTES
    else _STRUCTURE
    if byte in b"{}[]:,"
    else _STRING_ONLY
    for byte in range(256)
)
"""Per byte, where canonical JSON can hold it: only in a string, in a bare scalar, in
structure, or at a string's edge (a quote, or the backslash of an escape)."""
_MAYBE_BARE_AFTER: Final = bytes(
    1 if byte in b"\n:[,\\" + SCALAR_BYTES else 0 for byte in range(256)
)
"""Bytes after which a run of scalar bytes may stand outside a string: those a bare
scalar follows (the pad, a newline, is the buffer's edge), another scalar byte (the run
may be the tail of a bare scalar) and a backslash (the run may be an escape's tail)."""
_ESCAPE_REACH: Final = 5
"""How far before a span a backslash may start an escape that reaches into it (``\\u00XX``)."""
_RE2_SET_MEMORY: Final = 256 << 20  # big organization dictionaries outgrow RE2's 8 MiB

Matches = list[int]
"""Every match as one packed int, ``(pattern id << shift | start) << shift | end`` in
padded-buffer offsets (``shift``: :func:`_offset_bits` of the padded buffer), in no
particular order. (Ints rather than tuples: appending one is the cheapest thing a
hyperscan callback can do, and sorting them, which orders matches by pattern, then
start, then end, is several times faster. Sized to the buffer, they stay within the
62 bits that compiled code handles without allocating: up to 4,096 patterns on a buffer
of up to 16 MiB.)"""
_MAX_SCAN: Final = (1 << 32) - 3
"""Hyperscan scans at most 4 GiB in one call (the pads included), far beyond any body
limit."""

Placed = tuple[int, int, int, bool]
"""``(start, end, detector index, quoted)`` in buffer offsets."""
_END_OF: Final = itemgetter(1)


@dataclass(frozen=True, slots=True)
class _Pattern:
    expression: bytes
    detector: int
    caseless: bool
    framed: bool


class _Engine(Protocol):
    name: str

    def matches(self, padded: bytes) -> Matches: ...


def _offset_bits(padded: bytes) -> int:
    """How many bits an offset into ``padded`` (its end included) takes."""
    return len(padded).bit_length()


def _packed(pattern: int, start: int, end: int, shift: int) -> int:
    """One match as :data:`Matches` holds it."""
    return (pattern << shift | start) << shift | end


class _Collector:
    """What the hyperscan callback appends matches to, packed with ``shift`` bits per
    offset (see :data:`Matches`)."""

    def __init__(self, shift: int) -> None:
        self.found: Matches = []
        self.shift = shift


def _collect(pattern: int, start: int, end: int, _flags: int, collector: _Collector) -> None:
    """Hyperscan match callback (the context is a :class:`_Collector`)."""
    collector.found.append(_packed(pattern, start, end, collector.shift))


class _HyperscanEngine:
    """One block-mode hyperscan database with leftmost start-of-match reporting."""

    name = "hyperscan"

    def __init__(self, patterns: Sequence[_Pattern]) -> None:
        flags = [
            hyperscan.HS_FLAG_SOM_LEFTMOST | (hyperscan.HS_FLAG_CASELESS if p.caseless else 0)
            for p in patterns
        ]
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            database.compile(
                expressions=[p.expression for p in patterns],
                ids=list(range(len(patterns))),
                flags=flags,
            )
        except hyperscan.error as error:
            raise ValueError(f"patterns rejected by hyperscan: {error}") from None
        self._database = database
        self._scratch = hyperscan.Scratch(database)

    def matches(self, padded: bytes) -> Matches:
        collector = _Collector(_offset_bits(padded))
        # Positional: the binding parses keyword arguments slower than the scan of a short
        # line takes (data, handler, flags, context, scratch).
        # (The binding's stubs type the context as object; _collect reads it typed.)
        self._database.scan(padded, _collect, 0, collector, self._scratch)  # type: ignore[arg-type]
        return collector.found


class _Re2Engine:
    """RE2 fallback: one ``re2.Set`` pass says which patterns occur, then each of those is
    searched leftmost-longest. Framed patterns resume at the last byte of the previous
    token (the next lead may be that byte, and the next token may start at the previous
    trail), which reproduces what the hyperscan engine keeps; unframed (literal) patterns
    resume one byte after the previous start and keep the leftmost start per end, as
    hyperscan reports them."""

    name = "re2"

    def __init__(self, patterns: Sequence[_Pattern]) -> None:
        set_options = _re2_options(caseless=False)
        set_options.max_mem = _RE2_SET_MEMORY
        self._set = re2.Set.SearchSet(set_options)
        try:
            for pattern in patterns:
                expression = pattern.expression
                self._set.Add(b"(?i:" + expression + b")" if pattern.caseless else expression)
            self._set.Compile()
            self._regexes = tuple(
                re2.compile(p.expression, _re2_options(caseless=p.caseless)) for p in patterns
            )
        except re2.error as error:
            raise ValueError(f"patterns rejected by re2: {_first_clause(error)}") from None
        self._framed = tuple(p.framed for p in patterns)

    def matches(self, padded: bytes) -> Matches:
        found: Matches = []
        shift = _offset_bits(padded)
        for pattern in self._set.Match(padded) or ():  # None when nothing matches
            if self._framed[pattern]:
                self._framed_matches(pattern, padded, shift, found)
            else:
                self._unframed_matches(pattern, padded, shift, found)
        return found

    def _framed_matches(self, pattern: int, padded: bytes, shift: int, found: Matches) -> None:
        regex = self._regexes[pattern]
        append = found.append
        position = 0
        while (match := regex.search(padded, position)) is not None:
            start, end = match.span()
            append(_packed(pattern, start, end, shift))
            position = end - 2

    def _unframed_matches(self, pattern: int, padded: bytes, shift: int, found: Matches) -> None:
        regex = self._regexes[pattern]
        append = found.append
        position = 0
        seen_ends: set[int] = set()
        while (match := regex.search(padded, position)) is not None:
            start, end = match.span()
            if end > start and end not in seen_ends:
                seen_ends.add(end)
                append(_packed(pattern, start, end, shift))
            position = start + 1


def _re2_options(*, caseless: bool) -> Any:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # bytes, like hyperscan without UTF8
    options.longest_match = True
    options.never_capture = True
    options.log_errors = False  # RE2 would print the pattern text to stderr
    options.case_sensitive = not caseless
    return options


def _first_clause(error: Exception) -> str:
    """RE2 errors read ``<problem>: <piece of pattern>``; keep only the problem."""
    text = error.args[0] if error.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).split(":", 1)[0]


def hyperscan_available() -> bool:
    """Whether the hyperscan backend can be used on this machine."""
    return hyperscan is not None


def _make_engine(patterns: Sequence[_Pattern], backend: Backend) -> _Engine:
    if backend == "re2" or (backend == "auto" and hyperscan is None):
        return _Re2Engine(patterns)
    if hyperscan is None:
        raise ValueError("the hyperscan backend is not available on this machine")
    return _HyperscanEngine(patterns)


class Scanner:
    """Finds and replaces every detector's hits in a buffer with one scan.

    Build it once per plan; :meth:`find` and :meth:`redact` only read it.
    """

    __slots__ = (
        "_detectors",
        "_engine",
        "_framed",
        "_json_quoted",
        "_json_unquoted",
        "_longest_protected",
        "_names",
        "_not_in_pieces",
        "_pattern_detector",
        "_pattern_validators",
        "_pieces",
        "_protected",
        "_text",
        "_validators",
    )

    def __init__(self, detectors: Sequence[Detector], backend: Backend = "auto") -> None:
        if backend not in ("auto", "hyperscan", "re2"):
            raise ValueError(f"unknown scanner backend {backend!r}")
        self._detectors = tuple(detectors)
        names = [detector.name for detector in self._detectors]
        if len(set(names)) != len(names):
            raise ValueError("detector names must be unique")
        patterns = [
            _Pattern(expression, index, detector.caseless, detector.framed)
            for index, detector in enumerate(self._detectors)
            for expression in detector.patterns
        ]
        self._engine: _Engine | None = _make_engine(patterns, backend) if patterns else None
        self._names = tuple(names)
        self._validators: tuple[Validator, ...] = tuple(d.validate for d in self._detectors)
        self._pattern_detector = tuple(p.detector for p in patterns)
        self._pattern_validators = tuple(self._validators[p.detector] for p in patterns)
        self._framed = tuple(p.framed for p in patterns)
        texts = [detector.replacement for detector in self._detectors]
        self._text = tuple(text.encode() for text in texts)
        self._json_quoted = tuple(orjson.dumps(text) for text in texts)
        self._json_unquoted = tuple(quoted[1:-1] for quoted in self._json_quoted)
        # Our own replacements, and every built-in one (a buffer may have been scrubbed by
        # another scanner before), must never be found again.
        protected = set(self._text) | set(self._json_unquoted) | replacements.ALL_BYTES
        # Replacements longer than _PROTECTED_MAX bytes are not guarded (only an admin's
        # custom replacement could be; the guard keeps every substring in a set).
        self._protected = tuple(sorted(p for p in protected if 0 < len(p) <= _PROTECTED_MAX))
        self._longest_protected = max(map(len, self._protected), default=0)
        # Bytes no protected replacement holds: a span with one is none of its pieces.
        in_pieces = set(b"".join(self._protected))
        self._not_in_pieces = bytes(0 if byte in in_pieces else 1 for byte in range(256))
        self._pieces = frozenset(
            token[i:j]
            for token in self._protected
            for i in range(len(token))
            for j in range(i + 1, len(token) + 1)
        )

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return self._detectors

    @property
    def backend(self) -> str:
        """``"hyperscan"`` or ``"re2"`` (whatever ``"auto"`` chose)."""
        return self._engine.name if self._engine is not None else "none"

    def find(self, buffer: bytes, kind: BufferKind) -> list[Hit]:
        """Validated hits sorted by start, overlaps merged, in ``buffer`` offsets."""
        names = self._names
        placed, _ = self._place(buffer, kind)
        return [Hit(names[d], start, end) for start, end, d, _ in placed]

    def redact(self, buffer: bytes, kind: BufferKind) -> tuple[bytes, dict[str, int]]:
        """``buffer`` with every hit replaced, and the number of hits per detector name.

        Returns ``buffer`` itself (the same object) when nothing was found. The result is
        a fixed point: redacting it again finds nothing (see :func:`_settled`), unless
        more than ``_MAX_PASSES`` tokens are glued into one chain.
        """
        scrubbed, counts, _ = self._redact(buffer, kind, track_keys=False)
        return scrubbed, counts

    def redact_json(self, buffer: bytes) -> tuple[bytes, dict[str, int], bool]:
        """:meth:`redact` on canonical JSON, also telling whether a replacement landed in
        an object key (two keys of one object may then have become equal)."""
        return self._redact(buffer, BufferKind.JSON, track_keys=True)

    def _redact(
        self, buffer: bytes, kind: BufferKind, *, track_keys: bool
    ) -> tuple[bytes, dict[str, int], bool]:
        counts: dict[str, int] = {}
        names = self._names
        keys_changed = False
        for _ in range(_MAX_PASSES):
            placed, rejected = self._place(buffer, kind)
            if not placed:
                break
            for span in placed:
                name = names[span[2]]
                counts[name] = counts.get(name, 0) + 1
            if track_keys and not keys_changed:
                keys_changed = any_in_object_key(
                    buffer, [end for _, end, _, quoted in placed if not quoted]
                )
            buffer, separated = self._splice(buffer, kind, placed)
            if _settled(separated, placed, rejected):
                break
        return buffer, counts, keys_changed

    def _splice(self, buffer: bytes, kind: BufferKind, placed: list[Placed]) -> tuple[bytes, bool]:
        """The buffer with ``placed`` replaced, and whether every span sat between
        separators (:func:`_between_separators`, checked along the way)."""
        plain = self._text if kind is BufferKind.TEXT else self._json_unquoted
        quoted = self._json_quoted
        view = memoryview(buffer)
        parts: list[bytes | memoryview] = []
        append = parts.append
        position = 0
        separated = True
        size = len(buffer)
        for start, end, detector, needs_quotes in placed:
            if separated and not (
                (end >= size or buffer[end] in _SAFE_AFTER)
                and (not start or buffer[start - 1] in _SAFE_BEFORE)
            ):
                separated = _between_separators(buffer, kind, start, end, size)
            append(view[position:start])
            append(quoted[detector] if needs_quotes else plain[detector])
            position = end
        append(view[position:])
        return b"".join(parts), separated

    def _place(self, buffer: bytes, kind: BufferKind) -> tuple[list[Placed], list[Span]]:
        """Hits to replace (sorted, overlaps merged), and the (sorted) candidates that
        validators rejected."""
        if self._engine is None or not buffer:
            return [], []
        if len(buffer) > _MAX_SCAN:
            raise ValueError("buffer too large to scan")
        padded = b"".join((_PAD, buffer, _PAD))
        matches = self._engine.matches(padded)
        if not matches:
            return [], []
        placed, rejected = self._validated(buffer, padded, matches, kind)
        return (_merge(placed) if len(placed) > 1 else placed), rejected

    def _validated(
        self, buffer: bytes, padded: bytes, matches: Matches, kind: BufferKind
    ) -> tuple[list[Placed], list[Span]]:
        """The validated spans fitted to the buffer kind (unsorted; spans inside a
        replacement already in the buffer dropped) and the rejected candidates' tokens
        (sorted), in buffer offsets.

        One loop over the candidates does it all for the usual span; in JSON, spans the
        :func:`_in_one_string` shortcut cannot place are placed afterwards, in order, by
        :class:`~filters.detectors.json_spans.JsonSpans`."""
        rejected: list[Span] = []
        reject = rejected.append
        # Locals: this loop runs once per candidate on the hot path.
        framed, owner, validators = self._framed, self._pattern_detector, self._pattern_validators
        shift = _offset_bits(padded)
        offset_mask = (1 << shift) - 1
        is_json = kind is BufferKind.JSON
        longest, pieces = self._longest_protected, self._pieces
        not_in_pieces = self._not_in_pieces
        limit = len(padded) - 2
        placed: list[Placed] = []
        append = placed.append
        elsewhere: list[tuple[int, int, int]] = []
        last_pattern = last_end = -1
        matches.sort()  # by pattern, then start, then end
        count = len(matches)
        for index in range(count):
            match = matches[index]
            key = match >> shift
            if index + 1 < count and matches[index + 1] >> shift == key:
                continue  # a longer match from the same start follows
            pattern, start, end = key >> shift, key & offset_mask, match & offset_mask
            if framed[pattern]:
                # Keep a left-to-right run of matches whose tokens do not overlap, per
                # pattern (framing bytes may: a trail byte may start the next token).
                if pattern == last_pattern and start < last_end - 2:
                    continue
                last_pattern, last_end = pattern, end
                start += 1
                end -= 1
            found_spans = validators[pattern](padded, start, end)
            if not found_spans:
                reject((start - 1, end - 1))
                continue
            detector = owner[pattern]
            for low, high in found_spans:
                # Padded offsets, clipped to the buffer (the pads are never replaced).
                if low < 1:
                    low = 1
                if high > limit + 1:
                    high = limit + 1
                if low >= high:
                    continue
                if padded[low] > 0x7F or padded[high] > 0x7F:
                    low, high = _whole_characters(padded, low - 1, high - 1, limit)
                    low += 1
                    high += 1
                if is_json and not _in_one_string(padded, low, high):
                    elsewhere.append((low - 1, high - 1, detector))
                elif (
                    high - low > longest
                    or run_end(padded, low, high, not_in_pieces) < high
                    or padded[low:high] not in pieces
                    or not self._inside_replacement(padded, low, high)
                ):
                    append((low - 1, high - 1, detector, False))
        if elsewhere:
            self._place_json(buffer, elsewhere, placed)
        rejected.sort()
        return placed, rejected

    def _place_json(
        self, buffer: bytes, spans: list[tuple[int, int, int]], placed: list[Placed]
    ) -> None:
        """Fit spans to canonical JSON (see :mod:`filters.detectors.json_spans`) and add
        them to ``placed``, unless they lie inside a replacement already in the buffer."""
        spans.sort()  # JsonSpans places in increasing order of start
        place = JsonSpans(buffer).place
        longest, pieces = self._longest_protected, self._pieces
        for start, end, detector in spans:
            where = place(start, end)
            if where is None:
                continue
            low, high, quoted = where
            if (
                high - low <= longest
                and buffer[low:high] in pieces
                and self._inside_replacement(buffer, low, high)
            ):
                continue
            placed.append((low, high, detector, quoted))

    def _inside_replacement(self, buffer: bytes, start: int, end: int) -> bool:
        """True when ``[start, end)``, one of the pieces of a protected replacement, lies
        inside such a replacement already in the buffer (an org name ``user`` inside
        ``[user]``): replacing it again would break idempotency."""
        for token in self._protected:
            at = buffer.find(token, max(0, end - len(token)), start + len(token))
            while 0 <= at <= start:
                if at + len(token) >= end:
                    return True
                at = buffer.find(token, at + 1, start + len(token))
        return False


def _merge(placed: list[Placed]) -> list[Placed]:
    """Overlapping spans become their union, named after the span that starts first
    (the longest of those, then the detector listed first)."""
    placed.sort()  # by start, end, detector: nearly sorted already
    merged: list[Placed] = []
    for span in placed:
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            if span[0] == last[0] and span[1] > last[1]:
                merged[-1] = span  # same start and longer: it names the hit
            elif span[1] > last[1]:
                merged[-1] = (last[0], span[1], last[2], last[3])
            continue
        merged.append(span)
    return merged


def _settled(separated: bool, placed: list[Placed], rejected: list[Span]) -> bool:
    """Whether replacing ``placed`` gives a buffer in which nothing new can be found.

    Validators look at the bytes around a candidate, so a replacement can change what its
    neighbours are: a span that touched token text (``john@example.com`` glued to a JWT)
    gives that text a new boundary, and a candidate rejected for what stood next to it
    (``010000 0000`` after ``+1 ``) may pass once that is replaced. Either case asks the
    caller for one more pass; replacements between separators (``separated``: every span
    passed :func:`_between_separators`), far from rejected candidates, the usual case,
    settle at once.
    """
    return separated and (not rejected or not _near_rejected(placed, rejected))


def _between_separators(buffer: bytes, kind: BufferKind, start: int, end: int, size: int) -> bool:
    """Whether the span sits between separators (or buffer edges), so that replacing it
    cannot give neighbouring text a new token boundary."""
    if end < size and buffer[end] not in _SAFE_AFTER:
        return False
    return (
        not start
        or buffer[start - 1] in _SAFE_BEFORE
        or (kind is BufferKind.JSON and is_escape_tail(buffer, start - 1))
    )


def _near_rejected(placed: list[Placed], rejected: list[Span]) -> bool:
    """Whether a rejected candidate lies within a validator's reach of a span without
    being replaced along with it (rejected candidates starting more than
    ``_REJECTED_REACH`` before the span are not looked at). ``placed`` is sorted and
    free of overlaps, so its ends are sorted too; rejected candidates are few."""
    count = len(placed)
    for low, high in rejected:
        index = bisect_right(placed, low - _CONTEXT_REACH, key=_END_OF)
        while index < count:
            start, end = placed[index][0], placed[index][1]
            if start >= high + _CONTEXT_REACH:
                break
            if low >= start - _REJECTED_REACH and not start <= low < high <= end:
                return True
            index += 1
    return False


def _in_one_string(padded: bytes, low: int, high: int) -> bool:
    """Whether the padded-buffer span ``[low, high)`` is the usual span in canonical JSON,
    placed as it is: inside one string, because it holds a byte only strings hold and no
    quote or backslash to leave the string by, or a run of scalar bytes (``10.0.0.1``)
    after a byte no bare scalar can follow; either way with no backslash in the
    :data:`_ESCAPE_REACH` bytes before it (so it cuts no escape). Anything else goes to
    :class:`~filters.detectors.json_spans.JsonSpans`."""
    for index in range(max(0, low - _ESCAPE_REACH), low):
        if padded[index] == 0x5C:
            return False
    classes = _BYTE_CLASS
    string_only = False
    scalar_only = True
    for index in range(low, high):
        byte_class = classes[padded[index]]
        if byte_class == _STRING_ONLY:
            string_only = True
            scalar_only = False
        elif byte_class == _STRING_EDGE:
            return False
        elif byte_class == _STRUCTURE:
            scalar_only = False
    if string_only:
        return True
    return scalar_only and not _MAYBE_BARE_AFTER[padded[low - 1]]


def _whole_characters(padded: bytes, low: int, high: int, limit: int) -> tuple[int, int]:
    """Widen a buffer-offset span so that it does not cut a UTF-8 character."""
    while low > 0 and padded[low + 1] & 0xC0 == 0x80:
        low -= 1
    while high < limit and padded[high + 1] & 0xC0 == 0x80:
        high += 1
    return low, high
