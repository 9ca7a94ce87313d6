"""What a detector is, as the scanner sees it.

A detector finds one kind of sensitive value inside text. It is two halves:

* ``patterns``: regular expressions over UTF-8 **bytes** that the multi-pattern scanner
  (hyperscan, or google-re2 where hyperscan is unavailable) runs over a whole buffer at
  once. They are deliberately loose *candidate* finders: cheap, linear-time, no captures.
* ``validate``: exact Python code that looks at one candidate (and the bytes around it)
  and returns the precise spans to replace, or nothing. Checksums (Luhn, mod-97), range
  checks and the "must not fire on versions / hashes / timestamps" rules live here.

Buffers are either plain UTF-8 text or the canonical JSON that ``orjson.dumps`` writes
(see :class:`BufferKind`): in JSON mode a newline inside a string is the two bytes ``\\n``,
a backslash is ``\\\\``, a quote ``\\"``. Detectors return spans inside one string (or
covering one bare number) and the scanner clips spans so that no escape sequence is ever
cut in half.

Framing. Hyperscan reports one match per *end offset*, so a pattern that could stop at
every character of a token (``[a-z]+@...``) would call back once per character. A
*framed* pattern (the default) therefore consumes exactly one byte before the token (the
lead, often ``(?s:.)``) and exactly one byte after it (the trail, a byte that cannot
continue the token). The scanner scans ``b"\\n" + buffer + b"\\n"`` so that a token at
either edge still has its lead and trail, strips the two framing bytes from each match and
hands the validator the token alone. Unframed patterns (``framed=False``: literal
dictionaries, which compile much faster without framing) are handed over as matched.

Validators always receive the padded buffer: ``buffer[start - 1]`` and ``buffer[end]``
exist for every candidate, and spans are returned in the same (padded) coordinates. A
validator that rejects a candidate for what surrounds it should look no more than 8
bytes out: when a replacement lands that close to a rejected candidate, the scanner
scans once more, so that redacting is idempotent (see ``scanner._settled``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

Span = tuple[int, int]
"""Absolute ``[start, end)`` byte offsets into the scanned buffer."""

Validator = Callable[[bytes, int, int], list[Span]]
"""``validate(buffer, start, end)``: the candidate is ``buffer[start:end]``; return the
spans (absolute offsets, normally inside or equal to the candidate) to replace, or ``[]``.
A span may grow past the candidate only over the rest of the same token, when the pattern
matched part of it on purpose (a dictionary domain grows to its full host name)."""


class BufferKind(Enum):
    TEXT = "text"
    """Plain UTF-8 text."""
    JSON = "json"
    """Canonical JSON as written by ``orjson.dumps`` (escapes as described above)."""


@dataclass(frozen=True, slots=True)
class Detector:
    """One built-in (or custom) finder of sensitive values.

    ``name`` is what settings, metrics and ``--explain`` show (``email``, ``card`` ...).
    ``replacement`` is the text that replaces a hit (``[email]``); it must never itself
    be detected by any detector, so that scrubbing is idempotent.
    ``keep_prefix``/``keep_suffix`` style partial replacement (``password=[secret]``,
    ``/home/[user]/x``) is expressed by the validator returning only the inner span.
    """

    name: str
    patterns: tuple[bytes, ...]
    validate: Validator
    replacement: str
    default_enabled: bool = True
    caseless: bool = False
    description: str = ""
    framed: bool = True
    """Whether every pattern consumes one lead and one trail byte (see the module doc)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A validated finding: which detector, and the span it covers."""

    detector: str
    start: int
    end: int
