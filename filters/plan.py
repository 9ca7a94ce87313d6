"""The compiled plan and the walker that applies it (the hot path).

A :class:`Plan` is built once by :func:`filters.compile.compile_policy` and only read
afterwards. Scrubbing one document is three passes, each skipping what no rule reaches:

1. **Event filters** (``drop-event``, ``sample``) decide which events of a batch stay,
   looking at the events as received.
2. **Field rules** (``remove``, ``keep``, ``hash``, ``mask``, ``replace``, ``truncate``,
   ``generalize`` and scoped ``redact``) in the order written: one walk, steered by a
   :class:`~filters.selectors.PathAutomaton`, visits only subtrees some selector reaches
   and applies every matching rule to each value once.
3. **Detector sweep**: ``redact`` rules on ``**`` run last over the serialized document
   (keys and values alike) with one multi-pattern scan, so the cost of "every detector on
   every string" is one pass over bytes, not a Python loop over strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from filters.detectors.base import BufferKind
from filters.detectors.scanner import Scanner
from filters.outcome import LimitExceeded, Outcome, PayloadError
from filters.result import ScrubResult
from filters.selectors import PathAutomaton, Step, StepKind, parse_selector
from filters.spec import EngineLimits

Transform = Callable[[Any, Outcome], Any]
"""Turns one scalar into its scrubbed form; may count detector hits on the outcome."""

_CONTAINERS = (dict, list)


class _Removed:
    """Marker for a value a rule removed."""


REMOVED = _Removed()


class FieldKind(Enum):
    REMOVE = "remove"
    KEEP = "keep"
    TRANSFORM = "transform"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A compiled field rule. ``types`` holds Python types (empty: any)."""

    id: str
    kind: FieldKind
    types: frozenset[type]
    transform: Transform | None = None
    keep: PathAutomaton | None = None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A compiled ``drop-event`` or ``sample`` rule: ``keeps(event)`` says whether the
    event stays in its batch."""

    id: str
    keeps: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class DetectorSweep:
    """The final ``redact`` pass over the serialized document."""

    scanner: Scanner
    rule_of_detector: dict[str, str]


class EventPath:
    """Where a document keeps its events: ``"batch[*]"``, ``"[*]"``,
    ``"resourceLogs[*].scopeLogs[*].logRecords[*]"``. Built by codecs at import time."""

    __slots__ = ("steps", "text")

    def __init__(self, text: str) -> None:
        steps = parse_selector(text).steps
        if not steps or steps[-1].kind is not StepKind.ANY_INDEX:
            raise ValueError("an event path must end with [*]")
        if any(step.kind not in (StepKind.KEY, StepKind.ANY_INDEX) for step in steps):
            raise ValueError("an event path may only hold key names and [*]")
        self.text = text
        self.steps: tuple[Step, ...] = steps

    def event_lists(self, document: Any) -> list[list[Any]]:
        """Every list of events in the document (several for nested paths)."""
        nodes = [document]
        for step in self.steps[:-1]:
            if step.kind is StepKind.KEY:
                nodes = [
                    node[step.name]
                    for node in nodes
                    if isinstance(node, dict) and step.name in node
                ]
            else:
                nodes = [item for node in nodes if isinstance(node, list) for item in node]
        return [node for node in nodes if isinstance(node, list)]


class Plan:
    """An immutable, ready-to-run policy. Create with :func:`filters.compile.compile_policy`."""

    def __init__(
        self,
        name: str,
        event_filters: Sequence[EventFilter],
        field_rules: Sequence[FieldRule],
        automaton: PathAutomaton,
        sweep: DetectorSweep | None,
        limits: EngineLimits,
    ) -> None:
        self.name = name
        self._event_filters = tuple(event_filters)
        self._rules = tuple(field_rules)
        self._automaton = automaton
        self._sweep = sweep
        self._limits = limits
        self._event_paths: dict[str, EventPath] = {}

    @property
    def rule_ids(self) -> tuple[str, ...]:
        ids = [rule.id for rule in self._event_filters] + [rule.id for rule in self._rules]
        if self._sweep:
            ids.extend(dict.fromkeys(self._sweep.rule_of_detector.values()))
        return tuple(dict.fromkeys(ids))

    def scrub(
        self, document: Any, events: str | None = None, *, explain: bool = False
    ) -> ScrubResult:
        """Scrub one JSON-like document in place and return its canonical JSON.

        ``events`` says where the document keeps its events (see :class:`EventPath`);
        ``None`` means the document is one event. With ``explain`` the outcome lists
        ``(rule id, path)`` for every change. Raises :class:`PayloadError` for documents
        the engine cannot serialize and :class:`LimitExceeded` past the configured limits.
        """
        outcome = Outcome(changes=[] if explain else None)
        if events is None:
            document = self._scrub_single_event(document, outcome)
        else:
            self._scrub_batch(document, self._event_path(events), outcome)
        if outcome.all_events_dropped:
            return ScrubResult(json=b"null", outcome=outcome, _value=None, _parsed=True)
        return self._sweep_detectors(document, outcome)

    def scrub_text(self, text: str) -> tuple[str, Outcome]:
        """Run the detector sweep over one free-text string (a log line, a filename)."""
        outcome = Outcome()
        if self._sweep is None or not text:
            return text, outcome
        encoded = text.encode("utf-8", "surrogatepass")
        scrubbed, counts = self._sweep.scanner.redact(encoded, BufferKind.TEXT)
        if scrubbed is encoded:
            return text, outcome
        self._count_sweep(counts, outcome)
        return scrubbed.decode("utf-8", "surrogatepass"), outcome

    # --- pass 1: events ------------------------------------------------------------

    def _event_path(self, text: str) -> EventPath:
        path = self._event_paths.get(text)
        if path is None:
            path = EventPath(text)
            if len(self._event_paths) < 64:
                self._event_paths[text] = path
        return path

    def _scrub_single_event(self, document: Any, outcome: Outcome) -> Any:
        outcome.events_in = 1
        if not self._keeps_event(document, outcome):
            return None
        outcome.events_out = 1
        return self._walk_root(document, outcome, None)

    def _scrub_batch(self, document: Any, path: EventPath, outcome: Outcome) -> None:
        event_lists = path.event_lists(document)
        if not event_lists:
            self._scrub_single_event(document, outcome)
            return
        for events in event_lists:
            outcome.events_in += len(events)
            kept = [event for event in events if self._keeps_event(event, outcome)]
            outcome.events_out += len(kept)
            for index, event in enumerate(kept):
                kept[index] = self._walk_root(event, outcome, None)
            events[:] = kept
        self._walk_root(document, outcome, frozenset(id(events) for events in event_lists))

    def _keeps_event(self, event: Any, outcome: Outcome) -> bool:
        for event_filter in self._event_filters:
            if not event_filter.keeps(event):
                outcome.rule_hits[event_filter.id] += 1
                return False
        return True

    # --- pass 2: field rules ---------------------------------------------------------

    def _walk_root(self, node: Any, outcome: Outcome, skip: frozenset[int] | None) -> Any:
        if skip is not None and id(node) in skip:
            # The document is itself the event list ("[*]"): its events were walked already.
            return node
        automaton = self._automaton
        start = automaton.start
        path: list[str | int] | None = [] if outcome.changes is not None else None
        if automaton.accepts(start):
            node = self._apply(automaton.accepts(start), node, outcome, path)
            if node is REMOVED:
                return None
        if automaton.descends(start) and type(node) in _CONTAINERS:
            self._walk(node, start, 1, outcome, skip, path)
        return node

    def _walk(
        self,
        node: dict[str, Any] | list[Any],
        state: int,
        depth: int,
        outcome: Outcome,
        skip: frozenset[int] | None,
        path: list[str | int] | None,
    ) -> None:
        # The hot loop: automaton rows are read directly, and ``step`` is only called on
        # a memo miss (a key not seen before in this state).
        if depth > self._limits.max_depth:
            raise LimitExceeded(
                "engine", "max_depth", f"nesting deeper than {self._limits.max_depth}"
            )
        automaton = self._automaton
        rows = automaton.rows
        memo, _, _, exact_only = rows[state]
        if type(node) is list:
            self._walk_list(node, state, depth, outcome, skip, path)
            return
        pairs: Any = (
            [(key, node[key]) for key in memo if key in node] if exact_only else node.items()
        )
        removed: list[str] | None = None
        for key, value in pairs:
            target = memo.get(key)
            if target is None:
                target = automaton.step(state, key)
            if target < 0:
                continue
            _, accepts, descends, _ = rows[target]
            if path is not None:
                path.append(key)
            if accepts:
                value = self._apply(accepts, value, outcome, path)
                if value is REMOVED:
                    removed = [*(removed or ()), key]
                    if path is not None:
                        path.pop()
                    continue
                node[key] = value
            if descends and type(value) in _CONTAINERS and (skip is None or id(value) not in skip):
                self._walk(value, target, depth + 1, outcome, skip, path)
            if path is not None:
                path.pop()
        for key in removed or ():
            del node[key]

    def _walk_list(
        self,
        node: list[Any],
        state: int,
        depth: int,
        outcome: Outcome,
        skip: frozenset[int] | None,
        path: list[str | int] | None,
    ) -> None:
        automaton = self._automaton
        if automaton.uses_indices:
            targets = [automaton.step(state, index) for index in range(len(node))]
        else:
            # Without index selectors every element leads to the same state: look it up once.
            targets = [automaton.step(state, 0)] * len(node)
        rows = automaton.rows
        removed: list[int] | None = None
        for index, value in enumerate(node):
            target = targets[index]
            if target < 0:
                continue
            _, accepts, descends, _ = rows[target]
            if path is not None:
                path.append(index)
            if accepts:
                value = self._apply(accepts, value, outcome, path)
                if value is REMOVED:
                    removed = [*(removed or ()), index]
                    if path is not None:
                        path.pop()
                    continue
                node[index] = value
            if descends and type(value) in _CONTAINERS and (skip is None or id(value) not in skip):
                self._walk(value, target, depth + 1, outcome, skip, path)
            if path is not None:
                path.pop()
        for index in reversed(removed or ()):
            del node[index]

    def _apply(
        self,
        rule_numbers: tuple[int, ...],
        value: Any,
        outcome: Outcome,
        path: list[str | int] | None,
    ) -> Any:
        for number in rule_numbers:
            rule = self._rules[number]
            if rule.types and type(value) not in rule.types:
                continue
            if rule.kind is FieldKind.REMOVE:
                self._record(rule.id, outcome, path)
                return REMOVED
            if rule.kind is FieldKind.KEEP:
                if type(value) in _CONTAINERS:
                    assert rule.keep is not None
                    dropped = _prune(value, rule.keep, rule.keep.start)
                    if dropped:
                        outcome.rule_hits[rule.id] += dropped
                        if path is not None:
                            outcome.changes.append((rule.id, _format_path(path)))  # type: ignore[union-attr]
                continue
            if type(value) in _CONTAINERS:
                continue
            assert rule.transform is not None
            scrubbed = rule.transform(value, outcome)
            if scrubbed != value or type(scrubbed) is not type(value):
                self._record(rule.id, outcome, path)
                value = scrubbed
        return value

    @staticmethod
    def _record(rule_id: str, outcome: Outcome, path: list[str | int] | None) -> None:
        outcome.rule_hits[rule_id] += 1
        if path is not None:
            outcome.changes.append((rule_id, _format_path(path)))  # type: ignore[union-attr]

    # --- pass 3: detector sweep --------------------------------------------------------

    def _sweep_detectors(self, document: Any, outcome: Outcome) -> ScrubResult:
        try:
            serialized = orjson.dumps(document)
        except (TypeError, orjson.JSONEncodeError) as error:
            raise PayloadError(
                "engine", f"document cannot be serialized ({_reason(error)})"
            ) from None
        if serialized.count(b",") + 1 > self._limits.max_values:
            raise LimitExceeded(
                "engine", "max_values", f"more than {self._limits.max_values} values"
            )
        if self._sweep is None:
            return ScrubResult(json=serialized, outcome=outcome)
        scrubbed, counts = self._sweep.scanner.redact(serialized, BufferKind.JSON)
        if scrubbed is serialized:
            return ScrubResult(json=serialized, outcome=outcome)
        self._count_sweep(counts, outcome)
        try:
            value = orjson.loads(scrubbed)
        except orjson.JSONDecodeError:
            # Fail closed: a splice that broke the JSON must never reach the wire.
            raise PayloadError("engine", "detector sweep produced invalid JSON") from None
        if outcome.changes is not None:
            outcome.changes.extend(_sweep_changes(document, value, self._sweep))
        return ScrubResult(json=scrubbed, outcome=outcome, _value=value, _parsed=True)

    def _count_sweep(self, counts: dict[str, int], outcome: Outcome) -> None:
        rule_of_detector = self._sweep.rule_of_detector  # type: ignore[union-attr]
        for detector, count in counts.items():
            outcome.detector_hits[detector] += count
            outcome.rule_hits[rule_of_detector[detector]] += count


def _prune(node: dict[str, Any] | list[Any], allow: PathAutomaton, state: int) -> int:
    """Remove everything under ``node`` that no allowlisted selector reaches; return how
    many values were removed."""
    removed = 0
    items = list(node.items()) if type(node) is dict else list(enumerate(node))
    doomed: list[str | int] = []
    for key, value in items:
        target = allow.step(state, key)
        if target == PathAutomaton.DEAD:
            doomed.append(key)
        elif allow.accepts(target):
            continue
        elif allow.descends(target) and type(value) in _CONTAINERS:
            removed += _prune(value, allow, target)
        else:
            doomed.append(key)
    for key in reversed(doomed):
        del node[key]  # type: ignore[arg-type]
    return removed + len(doomed)


def _sweep_changes(before: Any, after: Any, sweep: DetectorSweep) -> list[tuple[str, str]]:
    """For ``--explain``: which paths the detector sweep changed, and by which rule."""
    changes: list[tuple[str, str]] = []
    _diff(before, after, [], sweep, changes)
    return changes


def _diff(
    before: Any, after: Any, path: list[str | int], sweep: DetectorSweep, out: list[tuple[str, str]]
) -> None:
    if type(before) is dict and type(after) is dict:
        for (key, value), (new_key, new_value) in zip(before.items(), after.items(), strict=False):
            if key != new_key:
                out.append((_rule_for(key, sweep), _format_path([*path, "<key>"])))
            _diff(value, new_value, [*path, new_key], sweep, out)
    elif type(before) is list and type(after) is list:
        for index, (value, new_value) in enumerate(zip(before, after, strict=False)):
            _diff(value, new_value, [*path, index], sweep, out)
    elif before != after:
        out.append((_rule_for(before, sweep), _format_path(path)))


def _rule_for(value: Any, sweep: DetectorSweep) -> str:
    hits = sweep.scanner.find(orjson.dumps(value), BufferKind.JSON)
    detector = hits[0].detector if hits else next(iter(sweep.rule_of_detector))
    return sweep.rule_of_detector[detector]


def _format_path(path: Sequence[str | int]) -> str:
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif parts:
            parts.append(f".{step}")
        else:
            parts.append(step)
    return "".join(parts) or "$"


def _reason(error: Exception) -> str:
    # orjson's messages name types and limits ("Recursion limit reached"), never values.
    return str(error).split(":")[0][:80]
