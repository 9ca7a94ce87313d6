"""The detector sweep: ``redact`` rules on ``**``, run over serialized JSON."""

from __future__ import annotations

from typing import Any

import orjson
import simdjson

from filters.detectors.base import BufferKind
from filters.detectors.scanner import Scanner
from filters.outcome import Outcome, PayloadError


class DetectorSweep:
    """The detectors of a policy's ``redact`` rules on ``**``, in one scanner, and the
    rule each detector's hits are counted for. Read-only once built."""

    __slots__ = ("_added_per_hit", "growth", "rule_of_detector", "scanner")

    def __init__(self, scanner: Scanner, rule_of_detector: dict[str, str]) -> None:
        self.scanner = scanner
        self.rule_of_detector = rule_of_detector
        self._added_per_hit = {
            detector.name: max(0, len(detector.replacement) - 1) for detector in scanner.detectors
        }
        self.growth = 1 + max(self._added_per_hit.values(), default=0)
        """How many times longer (in characters) the sweep can make a string at most:
        every hit is at least one character, replaced by at most the longest
        replacement; 1 at least, the factor of a string without hits."""

    def most_added(self, counts: dict[str, int]) -> int:
        """The most characters a sweep with these hit counts per detector can have added
        to any one string: a hit takes at least one character out and puts its
        replacement in."""
        added_per_hit = self._added_per_hit
        return sum(added_per_hit[name] * count for name, count in counts.items())

    @property
    def first_rule(self) -> str:
        """The rule the sweep's changes to a single value are named after."""
        return next(iter(self.rule_of_detector.values()))

    def redact_strings(self, strings: list[str], outcome: Outcome) -> dict[str, str]:
        """Each of ``strings`` that the sweep changes, mapped to its swept form. They are
        swept as one JSON array, in one scan; hits are counted per occurrence, as in a
        sweep of the document."""
        if not strings:
            return {}
        serialized = orjson.dumps(strings)
        scrubbed, counts = self.scanner.redact(serialized, BufferKind.JSON)  # strings: no keys
        if scrubbed is serialized:
            return {}
        self.count(counts, outcome)
        swept = parse_swept(scrubbed)
        if type(swept) is not list or len(swept) != len(strings):
            raise PayloadError("engine", "detector sweep changed the number of strings")
        return {
            before: after for before, after in zip(strings, swept, strict=True) if before != after
        }

    def count(self, counts: dict[str, int], outcome: Outcome) -> None:
        """Add the hits of one :meth:`Scanner.redact` to the outcome."""
        rule_of_detector = self.rule_of_detector
        for detector, count in counts.items():
            outcome.detector_hits[detector] += count
            outcome.rule_hits[rule_of_detector[detector]] += count


def check_swept(buffer: bytes) -> None:
    """Fail closed: JSON a splice broke must never reach the wire. (simdjson checks a
    document several times faster than parsing it into Python objects would.)"""
    try:
        simdjson.Parser().parse(buffer)  # a parser per call: it keeps no big buffer alive
    except ValueError:  # UnicodeDecodeError included
        raise _invalid() from None


def parse_swept(buffer: bytes) -> Any:
    """The swept JSON parsed back, failing closed like :func:`check_swept`."""
    try:
        return orjson.loads(buffer)
    except orjson.JSONDecodeError:
        raise _invalid() from None


def _invalid() -> PayloadError:
    return PayloadError("engine", "detector sweep produced invalid JSON")
