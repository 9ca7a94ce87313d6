"""The compiled plan and the walker that applies it (the hot path).

A :class:`Plan` is built once by :func:`filters.compile.compile_policy` and only read
afterwards. Scrubbing one document is four passes, each skipping what no rule reaches:

1. **Event filters** (``drop-event``, ``sample``) decide which events of a batch stay,
   looking at the events as received.
2. **Field rules** (``remove``, ``keep``, ``hash``, ``mask``, ``replace``, ``truncate``,
   ``generalize`` and scoped ``redact``) in the order written: one walk, steered by a
   :class:`~filters.selectors.PathAutomaton`, visits only subtrees some selector reaches
   and applies every matching rule to each value once.
3. **Late rules** (``truncate``): the walk of pass 2 only notes what they select; after
   it, the strings they would cut go through the sweep's detectors (in one batch), then
   the late rules apply, so that a cut can never hide part of a sensitive value from
   them. A string only a sweep could push past its limit is left in place, unless the
   document sweep's hits could have added enough characters to it (then it is swept and
   cut like the others, and the document swept again).
4. **Detector sweep**: ``redact`` rules on ``**`` run last over the serialized document
   (keys and values alike) with one multi-pattern scan, so the cost of "every detector on
   every string" is one pass over bytes, not a Python loop over strings. The spliced
   result is checked to be valid JSON (fail closed) without being parsed back, unless a
   key changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from mypy_extensions import mypyc_attr

from filters.detectors.base import BufferKind
from filters.outcome import LimitExceeded, Outcome, PayloadError
from filters.result import ScrubResult
from filters.selectors import Step, StepKind, parse_selector
from filters.spec import EngineLimits
from filters.sweep import DetectorSweep, check_swept, parse_swept
from filters.walker import CONTAINERS, Deferred, FieldWalker, format_path


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A compiled ``drop-event`` or ``sample`` rule: ``keeps(event)`` says whether the
    event stays in its batch."""

    id: str
    keeps: Callable[[Any], bool]


_GONE: Any = object()


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

    def event_lists(self, document: Any) -> list[tuple[list[str | int], list[Any]]]:
        """Every list of events in the document (several for nested paths), each with
        its path (for ``--explain``)."""
        nodes: list[tuple[list[str | int], Any]] = [([], document)]
        for step in self.steps[:-1]:
            if step.kind is StepKind.KEY:
                key = step.name
                assert key is not None  # a key step always has a name
                nodes = [
                    ([*path, key], node[key])
                    for path, node in nodes
                    if isinstance(node, dict) and key in node
                ]
            else:
                nodes = [
                    ([*path, index], item)
                    for path, node in nodes
                    if isinstance(node, list)
                    for index, item in enumerate(node)
                ]
        return [(path, node) for path, node in nodes if isinstance(node, list)]


@mypyc_attr(native_class=False)  # reload tests hold plans by weak reference
class Plan:
    """An immutable, ready-to-run policy. Create with :func:`filters.compile.compile_policy`."""

    def __init__(
        self,
        name: str,
        rule_ids: Sequence[str],
        event_filters: Sequence[EventFilter],
        fields: FieldWalker,
        sweep: DetectorSweep | None,
        limits: EngineLimits,
    ) -> None:
        self.name = name
        self.rule_ids = tuple(rule_ids)
        """Ids of the policy's rules, in the order written."""
        self._event_filters = tuple(event_filters)
        self._fields = fields
        self._sweep = sweep
        self._limits = limits
        self._event_paths: dict[str, EventPath] = {}

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
        if not self._fields.reaches_every_container:
            _check_depth(document, self._limits.max_depth)
        deferred: list[Deferred] | None = [] if self._fields.has_late_rules else None
        path = None if events is None else self._event_path(events)
        if path is None or not path.event_lists(document):
            document = self._scrub_single_event(document, outcome, deferred)
        else:
            self._scrub_batch(document, path, outcome, deferred)
        if outcome.all_events_dropped:
            return ScrubResult(json=b"null", outcome=outcome, _value=None, _parsed=True)
        uncertain: list[Deferred] = []
        if deferred:
            document, uncertain = self._apply_late_rules(document, deferred, outcome)
        return self._sweep_detectors(document, outcome, uncertain)

    def scrub_text(self, text: str) -> tuple[str, Outcome]:
        """Run the detector sweep over one free-text string (a log line, a filename)."""
        outcome = Outcome()
        if self._sweep is None or not text:
            return text, outcome
        encoded = text.encode("utf-8", "surrogatepass")
        scrubbed, counts = self._sweep.scanner.redact(encoded, BufferKind.TEXT)
        if scrubbed is encoded:
            return text, outcome
        self._sweep.count(counts, outcome)
        return scrubbed.decode("utf-8", "surrogatepass"), outcome

    # --- pass 1 and 2: events, then field rules ---------------------------------------

    def _event_path(self, text: str) -> EventPath:
        path = self._event_paths.get(text)
        if path is None:
            path = EventPath(text)
            if len(self._event_paths) < 64:
                self._event_paths[text] = path
        return path

    def _scrub_single_event(
        self, document: Any, outcome: Outcome, deferred: list[Deferred] | None
    ) -> Any:
        outcome.events_in = 1
        if not self._keeps_event(document, outcome):
            return None
        outcome.events_out = 1
        return self._fields.walk_root(document, outcome, None, _explain_path(outcome, []), deferred)

    def _scrub_batch(
        self, document: Any, path: EventPath, outcome: Outcome, deferred: list[Deferred] | None
    ) -> None:
        event_lists = path.event_lists(document)
        for _, events in event_lists:
            outcome.events_in += len(events)
            events[:] = [event for event in events if self._keeps_event(event, outcome)]
            outcome.events_out += len(events)
        _walk_events(self._fields, document, event_lists, outcome, deferred)

    def _keeps_event(self, event: Any, outcome: Outcome) -> bool:
        for event_filter in self._event_filters:
            if not event_filter.keeps(event):
                outcome.rule_hits[event_filter.id] += 1
                return False
        return True

    # --- pass 3: late rules (truncate) ------------------------------------------------

    def _apply_late_rules(
        self, document: Any, deferred: list[Deferred], outcome: Outcome
    ) -> tuple[Any, list[Deferred]]:
        """Apply the late rules the walk deferred to the values they change as they are,
        first sweeping those strings (in one batch); return the document (new if it was
        itself selected) and the strings only a sweep could push past a rule's limit,
        which :meth:`_sweep_detectors` settles.

        A string no late rule would change even once swept (a short note under a long
        truncation limit) is left to the sweep of the document."""
        placed = _still_placed(deferred, document)
        if self._sweep is None:
            return self._sweep_and_cut(document, placed, outcome), []
        growth = self._sweep.growth
        may_change = self._fields.late_may_change
        cut: list[Deferred] = []
        uncertain: list[Deferred] = []
        for entry in placed:
            value = entry[4]
            if type(value) is not str or may_change(entry[2], len(value)):
                cut.append(entry)
            elif may_change(entry[2], len(value) * growth):
                uncertain.append(entry)
        return self._sweep_and_cut(document, cut, outcome), uncertain

    def _sweep_and_cut(self, document: Any, placed: list[Deferred], outcome: Outcome) -> Any:
        """Sweep the strings of ``placed`` (in one batch), then apply their late rules;
        return the document (new if it was itself selected)."""
        swept: dict[str, str] = {}
        if self._sweep is not None:
            strings = [value for *_, value in placed if type(value) is str]
            swept = self._sweep.redact_strings(strings, outcome)
        for node, key, rules, path, value in placed:
            if type(value) is str and value in swept:
                value = swept[value]
                if path is not None:
                    outcome.changes.append((self._sweep.first_rule, format_path(path)))  # type: ignore[union-attr]
            value = self._fields.apply_late(rules, value, outcome, path)
            if node is None:
                document = value
            else:
                node[key] = value
        return document

    def _late_rules_may_cut(self, uncertain: list[Deferred], counts: dict[str, int]) -> bool:
        """Whether a sweep with these hit counts may have pushed one of the ``uncertain``
        strings past the limit of its late rules."""
        assert self._sweep is not None  # only a sweep leaves strings uncertain
        added = self._sweep.most_added(counts)
        may_change = self._fields.late_may_change
        return any(may_change(rules, len(value) + added) for _, _, rules, _, value in uncertain)

    # --- pass 4: detector sweep --------------------------------------------------------

    def _sweep_detectors(
        self, document: Any, outcome: Outcome, uncertain: list[Deferred]
    ) -> ScrubResult:
        serialized = _serialize(document)
        _check_values(document, serialized, self._limits.max_values)
        if self._sweep is None:
            return ScrubResult(json=serialized, outcome=outcome)
        scanner = self._sweep.scanner
        scrubbed, counts, keys_changed = scanner.redact_json(serialized)
        if uncertain and self._late_rules_may_cut(uncertain, counts):
            # Rare (a string close to its limit, in a document with hits): those strings
            # are swept and cut first, as the longer ones were, and the document swept
            # again; nothing of the first sweep was counted.
            document = self._sweep_and_cut(document, uncertain, outcome)
            serialized = _serialize(document)
            scrubbed, counts, keys_changed = scanner.redact_json(serialized)
        if scrubbed is serialized:
            return ScrubResult(json=serialized, outcome=outcome)
        self._sweep.count(counts, outcome)
        if not keys_changed and outcome.changes is None:
            # Fail closed: a splice that broke the JSON must never reach the wire. The
            # splice leaves canonical JSON canonical, so checking it is enough.
            check_swept(scrubbed)
            return ScrubResult(json=scrubbed, outcome=outcome)
        value = parse_swept(scrubbed)
        if outcome.changes is not None:
            outcome.changes.extend(_sweep_changes(document, value, self._sweep))
        # Serialized again because redacting keys can make two keys equal; the document
        # sent is then the parsed one (the later value wins), never one with duplicates.
        return ScrubResult(json=orjson.dumps(value), outcome=outcome, _value=value, _parsed=True)


def _still_placed(deferred: list[Deferred], document: Any) -> list[Deferred]:
    """The deferred values still where the walk noted them, or moved within their list.

    The envelope of a batch is walked after its events, so a ``keep`` rule on a container
    around the events can prune inside them after their values were noted: a value it
    removed is left out, one that moved up its list is found again (by identity, with one
    index of the list built on the first such miss)."""
    placed: list[Deferred] = []
    moved: dict[int, dict[int, int]] = {}
    node: Any
    for node, key, rules, path, value in deferred:
        if node is None:
            if document is value:
                placed.append((node, key, rules, path, value))
        elif type(node) is list:
            if not (key < len(node) and node[key] is value):
                index = moved.get(id(node))
                if index is None:
                    # The first position of each element wins: built from the end.
                    index = moved[id(node)] = {id(node[n]): n for n in range(len(node) - 1, -1, -1)}
                key = index.get(id(value))
                if key is None:
                    continue
            placed.append((node, key, rules, path, value))
        elif node.get(key, _GONE) is value:
            placed.append((node, key, rules, path, value))
    return placed


def _walk_events(
    walker: FieldWalker,
    document: Any,
    event_lists: list[tuple[list[str | int], list[Any]]],
    outcome: Outcome,
    deferred: list[Deferred] | None,
) -> None:
    """Walk every event with rules relative to the event, then the envelope around them."""
    for prefix, events in event_lists:
        depth = len(prefix) + 2  # the document is at depth 1, its events list one deeper
        for index, event in enumerate(events):
            path = _explain_path(outcome, [*prefix, index])
            events[index] = walker.walk_root(
                event, outcome, None, path, deferred, (events, index), depth
            )
    skip = frozenset(id(events) for _, events in event_lists)
    pruned = walker.pruned(outcome) if deferred else 0
    walker.walk_root(document, outcome, skip, _explain_path(outcome, []), deferred)
    if deferred and walker.pruned(outcome) != pruned:
        # The envelope's rules removed something around values the event walks noted
        # (a keep on a container of the events, a remove of one): only the values still
        # in the document are swept, cut and counted.
        deferred[:] = _attached(deferred, document)


def _attached(deferred: list[Deferred], document: Any) -> list[Deferred]:
    """The deferred values whose container is still part of the document."""
    reachable: set[int] = set()
    pending = [document] if type(document) in CONTAINERS else []
    while pending:
        node = pending.pop()
        reachable.add(id(node))
        _add_inner_containers(node, pending)
    return [entry for entry in deferred if entry[0] is None or id(entry[0]) in reachable]


def _check_depth(document: Any, max_depth: int) -> None:
    """Raise past ``max_depth`` levels of containers: for plans whose walk does not visit
    every container (no selector starting with ``**``), which so cannot measure it."""
    level = [document] if type(document) in CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise LimitExceeded("engine", "max_depth", f"nesting deeper than {max_depth}")
        inner: list[Any] = []
        for node in level:
            _add_inner_containers(node, inner)
        level = inner


def _check_values(document: Any, serialized: bytes, max_values: int) -> None:
    """Raise when the document holds more than ``max_values`` array elements and object
    members. Each of those follows a byte of its own in the JSON (``[``, ``,`` or ``:``),
    so their number is at most the JSON's length, and at most its commas plus opening
    brackets (more when strings hold those bytes): only a document over both bounds is
    counted, and the usual one costs nothing (counting bytes is ~0.6 ms per MB)."""
    if len(serialized) <= max_values:
        return
    bound = serialized.count(b",") + serialized.count(b"[") + serialized.count(b"{")
    if bound > max_values and _count_values(document, max_values) > max_values:
        raise LimitExceeded("engine", "max_values", f"more than {max_values} values")


def _count_values(document: Any, stop_after: int) -> int:
    """Array elements and object members, counted until past ``stop_after``."""
    count = 0
    pending = [document] if type(document) in CONTAINERS else []
    while pending and count <= stop_after:
        node = pending.pop()
        count += len(node)
        _add_inner_containers(node, pending)
    return count


def _add_inner_containers(node: dict[str, Any] | list[Any], found: list[Any]) -> None:
    """Append the arrays and objects directly inside ``node`` to ``found``. (A plain
    loop: compiled, a generator over the children made the depth check of a 127 KB batch
    cost as much as parsing it.)"""
    children: Iterable[Any] = node.values() if type(node) is dict else node
    for child in children:
        kind = type(child)
        if kind is dict or kind is list:
            found.append(child)


def _explain_path(outcome: Outcome, path: list[str | int]) -> list[str | int] | None:
    return path if outcome.changes is not None else None


def _serialize(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError) as error:
        raise PayloadError("engine", f"document cannot be serialized ({_reason(error)})") from None


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
                out.append((_rule_for(key, sweep), format_path([*path, "<key>"])))
            _diff(value, new_value, [*path, new_key], sweep, out)
    elif type(before) is list and type(after) is list:
        for index, (value, new_value) in enumerate(zip(before, after, strict=False)):
            _diff(value, new_value, [*path, index], sweep, out)
    elif before != after:
        out.append((_rule_for(before, sweep), format_path(path)))


def _rule_for(value: Any, sweep: DetectorSweep) -> str:
    hits = sweep.scanner.find(orjson.dumps(value), BufferKind.JSON)
    detector = hits[0].detector if hits else next(iter(sweep.rule_of_detector))
    return sweep.rule_of_detector[detector]


def _reason(error: Exception) -> str:
    # orjson's messages name types and limits ("Recursion limit reached"), never values.
    return str(error).split(":")[0][:80]
