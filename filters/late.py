"""Late rules (``truncate``): they run after every other field rule, on strings the
detector sweep has already been through, so that a cut can never hide the rest of an
e-mail address or a token from the detectors.

Rather than sweeping the document and parsing the result back to truncate it, the
strings the late rules select are collected, swept in one scan (as one JSON array) and
put back, redacted, before the truncation; the sweep of the whole document that follows
finds nothing new in them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from filters.outcome import Outcome, PayloadError
from filters.selectors import PathAutomaton, Selector
from filters.sweep import DetectorSweep, parse_swept
from filters.walker import FieldKind, FieldRule, FieldWalker

Walk = Callable[[FieldWalker], None]
"""Runs a walker over a document (event by event when it has events)."""


class LateRules:
    """``truncate`` rules (``rules``, with their ``selectors`` labelled by rule number)
    and the sweep whose detectors go over what they select first."""

    def __init__(
        self,
        rules: Sequence[FieldRule],
        selectors: Sequence[Selector],
        labels: Sequence[int],
        sweep: DetectorSweep | None,
        max_depth: int,
    ) -> None:
        self._sweep = sweep
        self._max_depth = max_depth
        self._rules = tuple(rules)
        if sweep is None:
            self._plain = FieldWalker(rules, PathAutomaton(selectors, labels), max_depth)
            return
        self._finder = PathAutomaton(selectors, [0] * len(selectors))
        # Label 0: put the swept strings back; then the truncate rules, one label up.
        self._after_sweep = PathAutomaton(
            [*selectors, *selectors], [0] * len(selectors) + [label + 1 for label in labels]
        )
        self._rule_id = next(iter(sweep.rule_of_detector.values()))

    def apply(self, walk: Walk, outcome: Outcome) -> None:
        if self._sweep is None:
            walk(self._plain)
            return
        found: list[str] = []

        def collect(value: Any, _: Outcome) -> Any:
            if type(value) is str:
                found.append(value)
            return value

        walk(self._walker(self._finder, FieldRule("", FieldKind.TRANSFORM, frozenset(), collect)))
        swept = self._swept(found, outcome)

        def put_back(value: Any, _: Outcome) -> Any:
            return swept.get(value, value) if type(value) is str else value

        # Counted by the sweep already, hit by hit; the walk only names the paths.
        restore = FieldRule(
            self._rule_id, FieldKind.TRANSFORM, frozenset(), put_back, counted=False
        )
        walk(self._walker(self._after_sweep, restore, *self._rules))

    def _walker(self, automaton: PathAutomaton, *rules: FieldRule) -> FieldWalker:
        return FieldWalker(rules, automaton, self._max_depth)

    def _swept(self, found: list[str], outcome: Outcome) -> dict[str, str]:
        """Each string of ``found`` that the sweep changes, mapped to its swept form."""
        assert self._sweep is not None
        if not found:
            return {}
        serialized = orjson.dumps(found)
        scrubbed, counts, _ = self._sweep.scanner.redact_json(serialized)
        if scrubbed is serialized:
            return {}
        self._sweep.count(counts, outcome)
        strings = parse_swept(scrubbed)
        if type(strings) is not list or len(strings) != len(found):
            raise PayloadError("engine", "detector sweep changed the number of strings")
        return {
            before: after for before, after in zip(found, strings, strict=True) if before != after
        }
