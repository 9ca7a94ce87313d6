"""The multi-pattern scanner: every detector's patterns in one database, one pass per buffer.

A :class:`Scanner` is compiled once from a sequence of detectors (at plan compile time)
and then only read. Per buffer it

1. scans ``b"\\n" + buffer + b"\\n"`` once with all patterns (hyperscan; google-re2 where
   hyperscan cannot be imported, e.g. on ARM: same results, slower);
2. keeps, per pattern and start offset, the longest match, and per pattern a left-to-right
   run of non-overlapping matches (neighbours may share one framing byte);
3. hands each candidate to its detector's validator, the only Python work per candidate;
4. fits the validated spans to the buffer kind (in JSON: never cut an escape, quote a
   replacement that stands for a bare number; see :mod:`filters.detectors.json_spans`),
   drops spans that fall inside a replacement already in the buffer, and merges
   overlapping spans (the union is replaced once, named after the span that starts first,
   the longest on ties, then the detector listed first).

The scanner is not thread-safe: it owns one hyperscan scratch space. A worker process
scans on one thread; give each thread its own scanner if that ever changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import orjson
import re2

from filters.detectors import replacements
from filters.detectors.base import BufferKind, Detector, Hit, Validator
from filters.detectors.json_spans import JsonSpans

try:  # hyperscan ships x86-64 wheels only
    import hyperscan
except ImportError:  # pragma: no cover - exercised on ARM
    hyperscan = None

Backend = Literal["auto", "hyperscan", "re2"]

_PAD: Final = b"\n"
_RE2_SET_MEMORY: Final = 256 << 20

Candidates = dict[tuple[int, int], int]
"""``(pattern id, match start) -> longest match end``, in padded-buffer offsets."""

Placed = tuple[int, int, int, bool]
"""``(start, end, detector index, quoted)`` in buffer offsets."""


@dataclass(frozen=True, slots=True)
class _Pattern:
    expression: bytes
    detector: int
    caseless: bool
    framed: bool


class _Engine(Protocol):
    name: str

    def candidates(self, padded: bytes) -> Candidates: ...


def _keep_longest(pattern: int, start: int, end: int, _flags: int, found: Candidates) -> None:
    """Hyperscan match callback: the longest end per (pattern, start)."""
    key = (pattern, start)
    if found.get(key, -1) < end:
        found[key] = end


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

    def candidates(self, padded: bytes) -> Candidates:
        found: Candidates = {}
        self._database.scan(
            padded, match_event_handler=_keep_longest, context=found, scratch=self._scratch
        )
        return found


class _Re2Engine:
    """RE2 fallback: one ``re2.Set`` pass says which patterns occur, then each of those is
    searched leftmost-longest. Framed patterns resume at the previous match's trail byte
    (it may be the next lead), which reproduces what the hyperscan engine keeps; unframed
    (literal) patterns resume one byte after the previous start and keep the leftmost
    start per end, as hyperscan reports them."""

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

    def candidates(self, padded: bytes) -> Candidates:
        found: Candidates = {}
        for pattern in self._set.Match(padded):
            if self._framed[pattern]:
                self._framed_matches(pattern, padded, found)
            else:
                self._unframed_matches(pattern, padded, found)
        return found

    def _framed_matches(self, pattern: int, padded: bytes, found: Candidates) -> None:
        regex = self._regexes[pattern]
        position = 0
        while (match := regex.search(padded, position)) is not None:
            start, end = match.span()
            found[(pattern, start)] = end
            position = end - 1

    def _unframed_matches(self, pattern: int, padded: bytes, found: Candidates) -> None:
        regex = self._regexes[pattern]
        position = 0
        seen_ends: set[int] = set()
        while (match := regex.search(padded, position)) is not None:
            start, end = match.span()
            if end > start and end not in seen_ends:
                seen_ends.add(end)
                found[(pattern, start)] = end
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
    if backend not in ("auto", "hyperscan", "re2"):
        raise ValueError(f"unknown scanner backend {backend!r}")
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
        "_pattern_detector",
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
        self._framed = tuple(p.framed for p in patterns)
        texts = [detector.replacement for detector in self._detectors]
        self._text = tuple(text.encode() for text in texts)
        self._json_quoted = tuple(orjson.dumps(text) for text in texts)
        self._json_unquoted = tuple(quoted[1:-1] for quoted in self._json_quoted)
        # Our own replacements, and every built-in one (a buffer may have been scrubbed by
        # another scanner before), must never be found again.
        protected = set(self._text) | set(self._json_unquoted) | replacements.ALL_BYTES
        self._protected = tuple(sorted(protected))
        self._longest_protected = max(map(len, self._protected), default=0)

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
        return [Hit(names[d], start, end) for start, end, d, _ in self._place(buffer, kind)]

    def redact(self, buffer: bytes, kind: BufferKind) -> tuple[bytes, Counter[str]]:
        """``buffer`` with every hit replaced, and the number of hits per detector name.

        Returns ``buffer`` itself (the same object) when nothing was found.
        """
        placed = self._place(buffer, kind)
        counts: Counter[str] = Counter()
        if not placed:
            return buffer, counts
        plain = self._text if kind is BufferKind.TEXT else self._json_unquoted
        quoted = self._json_quoted
        view = memoryview(buffer)
        parts: list[bytes | memoryview] = []
        position = 0
        for start, end, detector, needs_quotes in placed:
            parts.append(view[position:start])
            parts.append(quoted[detector] if needs_quotes else plain[detector])
            counts[self._names[detector]] += 1
            position = end
        parts.append(view[position:])
        return b"".join(parts), counts

    def _place(self, buffer: bytes, kind: BufferKind) -> list[Placed]:
        if self._engine is None or not buffer:
            return []
        validated = self._validated(b"".join((_PAD, buffer, _PAD)))
        if not validated:
            return []
        validated.sort()
        if kind is BufferKind.JSON:
            placed = self._place_json(buffer, validated)
        else:
            placed = [(start, end, d, False) for start, end, d in validated]
        return self._merge([p for p in placed if not self._inside_replacement(buffer, p)])

    def _validated(self, padded: bytes) -> list[tuple[int, int, int]]:
        """Validated ``(start, end, detector)`` spans in buffer offsets (unsorted)."""
        found = self._engine.candidates(padded) if self._engine is not None else {}
        if not found:
            return []
        limit = len(padded) - 2
        spans: list[tuple[int, int, int]] = []
        last_pattern, last_end = -1, -1
        for (pattern, start), end in sorted(found.items()):
            if self._framed[pattern]:
                # Keep a left-to-right run of non-overlapping matches per pattern (the
                # trail byte of one may be the lead byte of the next).
                if pattern == last_pattern and start < last_end - 1:
                    continue
                last_pattern, last_end = pattern, end
                token_start, token_end = start + 1, end - 1
            else:
                token_start, token_end = start, end
            detector = self._pattern_detector[pattern]
            for low, high in self._validators[detector](padded, token_start, token_end):
                low, high = max(low - 1, 0), min(high - 1, limit)  # drop the pad
                if low < high:
                    spans.append((*_whole_characters(padded, low, high, limit), detector))
        return spans

    @staticmethod
    def _place_json(buffer: bytes, validated: list[tuple[int, int, int]]) -> list[Placed]:
        json_spans = JsonSpans(buffer)
        placed: list[Placed] = []
        for start, end, detector in validated:
            where = json_spans.place(start, end)
            if where is not None:
                placed.append((where[0], where[1], detector, where[2]))
        return placed

    def _inside_replacement(self, buffer: bytes, placed: Placed) -> bool:
        """True when the span lies inside a replacement already in the buffer (an org
        name ``user`` inside ``[user]``): replacing it again would break idempotency."""
        start, end = placed[0], placed[1]
        if end - start > self._longest_protected:
            return False
        segment = buffer[start:end]
        for token in self._protected:
            if segment not in token:
                continue
            at = buffer.find(token, max(0, end - len(token)), start + len(token))
            while 0 <= at <= start:
                if at + len(token) >= end:
                    return True
                at = buffer.find(token, at + 1, start + len(token))
        return False

    @staticmethod
    def _merge(placed: list[Placed]) -> list[Placed]:
        placed.sort(key=lambda p: (p[0], -p[1], p[2]))
        merged: list[Placed] = []
        for span in placed:
            if merged and span[0] < merged[-1][1]:
                last = merged[-1]
                if span[1] > last[1]:
                    merged[-1] = (last[0], span[1], last[2], last[3])
                continue
            merged.append(span)
        return merged


def _whole_characters(padded: bytes, low: int, high: int, limit: int) -> tuple[int, int]:
    """Widen a buffer-offset span so that it does not cut a UTF-8 character."""
    while low > 0 and padded[low + 1] & 0xC0 == 0x80:
        low -= 1
    while high < limit and padded[high + 1] & 0xC0 == 0x80:
        high += 1
    return low, high
