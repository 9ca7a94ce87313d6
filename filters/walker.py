"""The walk that applies field rules: one pass, steered by a path automaton."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from filters.outcome import LimitExceeded, Outcome
from filters.selectors import PathAutomaton, StateRow

Transform = Callable[[Any, Outcome], Any]
"""Turns one scalar into its scrubbed form; may count detector hits on the outcome."""

CONTAINERS = (dict, list)
"""The JSON container types (a tuple, for ``type(value) in CONTAINERS``)."""


class _Removed:
    """Marker for a value a rule removed."""


REMOVED = _Removed()


class FieldKind(Enum):
    REMOVE = "remove"
    KEEP = "keep"
    TRANSFORM = "transform"
    LATE = "late"
    """A transform the walk only notes (see :data:`Deferred`), applied after it."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A compiled field rule. ``types`` holds Python types (empty: any). ``pure``, when
    set, is ``transform`` without the outcome (a transform that counts nothing), which
    the walk calls directly."""

    id: str
    kind: FieldKind
    types: frozenset[type]
    transform: Transform | None = None
    keep: PathAutomaton | None = None
    pure: Callable[[Any], Any] | None = None
    keeps_up_to: int | None = None
    """For a ``LATE`` rule: strings of at most this many characters come out unchanged
    (a truncation's ``max_length``); None when any string may change."""


Deferred = tuple[Any, Any, tuple[int, ...], list[str | int] | None, Any]
"""A scalar some ``LATE`` rules select: ``(container, key, rule numbers, path, value)``;
the container is None for the document itself, the path None unless explaining, the value
what every other rule has made of it (``container[key]`` after the walk, unless a rule
on an enclosing container pruned around it afterwards)."""


class FieldWalker:
    """Applies a set of field rules to a document in one walk. Only subtrees some
    selector reaches are visited; every matching rule is applied to a value once, in the
    order the rules were written."""

    def __init__(
        self, rules: Sequence[FieldRule], automaton: PathAutomaton, max_depth: int
    ) -> None:
        self._rules = tuple(rules)
        self._automaton = automaton
        self._max_depth = max_depth
        # The usual accepting state applies one plain transform (no type restriction):
        # the walk calls it directly instead of going through _apply.
        self._single_transforms: dict[tuple[int, ...], tuple[str, Any, bool]] = {
            (number,): (rule.id, rule.pure or rule.transform, rule.pure is not None)
            for number, rule in enumerate(self._rules)
            if rule.kind is FieldKind.TRANSFORM and not rule.types and rule.transform is not None
        }
        self._single_of_state: list[tuple[str, Any, bool] | None] = []
        """:attr:`_single_transforms` by automaton state, filled as the walk meets states
        (the automaton only ever adds states): a list index instead of hashing a tuple."""
        self._late = frozenset(
            number for number, rule in enumerate(self._rules) if rule.kind is FieldKind.LATE
        )
        self._late_of: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._pruning_ids = tuple(
            {rule.id for rule in self._rules if rule.kind in (FieldKind.REMOVE, FieldKind.KEEP)}
        )

    @property
    def reaches_every_container(self) -> bool:
        """Whether a walk visits (and so checks the depth of) every container."""
        return self._automaton.deep_from_start

    @property
    def has_late_rules(self) -> bool:
        return bool(self._late)

    def pruned(self, outcome: Outcome) -> int:
        """How many values the walks counted on ``outcome`` have removed so far."""
        hits = outcome.rule_hits
        return sum(hits[rule_id] for rule_id in self._pruning_ids)

    def walk_root(
        self,
        node: Any,
        outcome: Outcome,
        skip: frozenset[int] | None,
        path: list[str | int] | None,
        deferred: list[Deferred] | None = None,
        place: tuple[Any, Any] = (None, None),
        depth: int = 1,
    ) -> Any:
        """Walk ``node``, which sits at ``depth`` in its document (1: it is the document)
        at ``place`` (container and key; none for the document). Values ``LATE`` rules
        select are added to ``deferred`` (a list when the walker has late rules)."""
        if skip is not None and id(node) in skip:
            # The document is itself the event list ("[*]"): its events were walked already.
            return node
        automaton = self._automaton
        start = automaton.start
        if automaton.accepts(start):
            node = self._apply(automaton.accepts(start), node, outcome, path)
            if node is REMOVED:
                return None
            if deferred is not None:
                self._defer(automaton.accepts(start), place[0], place[1], node, path, deferred)
        if automaton.descends(start) and type(node) in CONTAINERS:
            self._walk((node,), start, depth, outcome, skip, path, deferred)
        return node

    def late_may_change(self, rule_numbers: tuple[int, ...], length: int) -> bool:
        """Whether any of the ``LATE`` rules ``rule_numbers`` may change a string of
        ``length`` characters."""
        for number in rule_numbers:
            limit = self._rules[number].keeps_up_to
            if limit is None or length > limit:
                return True
        return False

    def apply_late(
        self,
        rule_numbers: tuple[int, ...],
        value: Any,
        outcome: Outcome,
        path: list[str | int] | None,
    ) -> Any:
        """Apply the ``LATE`` rules ``rule_numbers`` (from a :data:`Deferred`) to a value."""
        for number in rule_numbers:
            value = self._transform(self._rules[number], value, outcome, path)
        return value

    def _walk(
        self,
        nodes: Sequence[Any],
        state: int,
        depth: int,
        outcome: Outcome,
        skip: frozenset[int] | None,
        path: list[str | int] | None,
        deferred: list[Deferred] | None,
    ) -> None:
        """Walk containers that all sit in ``state``: one, or (not explaining, ``path``
        None) the objects of one list, walked in one call rather than one call each."""
        # The hot loop: automaton rows are read directly, ``step`` is only called on a
        # memo miss (a key not seen before in this state), and a scalar under a key known
        # to accept nothing is passed over after one set lookup. Locals are typed so that
        # the compiled build (mypyc) turns these lookups into direct C calls.
        if depth > self._max_depth:
            raise LimitExceeded("engine", "max_depth", f"nesting deeper than {self._max_depth}")
        automaton = self._automaton
        rows: list[StateRow] = automaton.rows
        row = rows[state]
        memo: dict[str | int, int] = row[0]
        exact_only: bool = row[3]
        passive: set[str | int] = row[4]
        single_of_state = self._single_of_state
        rule_hits: dict[str, int] = outcome.rule_hits
        for node in nodes:
            if type(node) is list:
                if not automaton.uses_indices:
                    # Without index selectors every element leads to the same state.
                    self._walk_list(
                        node, automaton.step(state, 0), depth, outcome, skip, path, deferred
                    )
                    continue
                # Index selectors are rare: the list is read as a dict of its elements.
                members: dict[Any, Any] = dict(enumerate(node))
            elif exact_only:
                members = {key: node[key] for key in memo if key in node}
            else:
                members = node
            removed: list[Any] | None = None
            first_deferred = 0
            # One loop over a dict's items, which compiled code reads without building
            # a tuple per member.
            for key, value in members.items():
                value_type = type(value)
                is_container = value_type is dict or value_type is list
                if not is_container and key in passive:
                    continue
                found = memo.get(key)
                target: int = automaton.step(state, key) if found is None else found
                if target < 0:
                    continue
                target_row = rows[target]
                accepts: tuple[int, ...] = target_row[1]
                if accepts:
                    single = None
                    if not is_container:
                        single = (
                            single_of_state[target]
                            if target < len(single_of_state)
                            else self._single_of(target)
                        )
                    if single is not None:
                        transform = single[1]
                        scrubbed = transform(value) if single[2] else transform(value, outcome)
                        if scrubbed != value or type(scrubbed) is not value_type:
                            node[key] = scrubbed
                            if path is None:
                                rule_hits[single[0]] += 1
                            else:
                                self._record(single[0], outcome, [*path, key])
                        continue
                    value = self._accept(accepts, node, key, value, outcome, path, deferred)
                    if value is REMOVED:
                        if removed is None:
                            first_deferred = len(deferred) if deferred else 0
                        removed = [*(removed or ()), key]
                        continue
                    value_type = type(value)
                    is_container = value_type is dict or value_type is list
                if is_container and target_row[2] and (skip is None or id(value) not in skip):
                    if path is not None:
                        path.append(key)
                    self._walk((value,), target, depth + 1, outcome, skip, path, deferred)
                    if path is not None:
                        path.pop()
            if removed:
                _delete(node, removed, deferred, first_deferred)

    def _single_of(self, state: int) -> tuple[str, Any, bool] | None:
        """The plain transform that accepting ``state`` applies, if any (see
        :attr:`_single_of_state`, extended here up to ``state``)."""
        rows = self._automaton.rows
        singles = self._single_of_state
        while len(singles) <= state:
            singles.append(self._single_transforms.get(rows[len(singles)][1]))
        return singles[state]

    def _walk_list(
        self,
        node: list[Any],
        target: int,
        depth: int,
        outcome: Outcome,
        skip: frozenset[int] | None,
        path: list[str | int] | None,
        deferred: list[Deferred] | None,
    ) -> None:
        """A list when no selector names an index: every element leads to ``target``."""
        if target < 0:
            return
        _, accepts, descends, _, _ = self._automaton.rows[target]
        if not (accepts or descends):
            return
        containers = CONTAINERS
        if not accepts and path is None:
            inner = [
                value
                for value in node
                if type(value) in containers and (skip is None or id(value) not in skip)
            ]
            if inner:
                self._walk(inner, target, depth + 1, outcome, skip, path, deferred)
            return
        removed: list[int] | None = None
        first_deferred = 0
        for index, value in enumerate(node):
            if accepts:
                value = self._accept(accepts, node, index, value, outcome, path, deferred)
                if value is REMOVED:
                    if removed is None:
                        first_deferred = len(deferred) if deferred else 0
                    removed = [*(removed or ()), index]
                    continue
            if descends and type(value) in containers and (skip is None or id(value) not in skip):
                if path is not None:
                    path.append(index)
                self._walk((value,), target, depth + 1, outcome, skip, path, deferred)
                if path is not None:
                    path.pop()
        if removed:
            _delete(node, removed, deferred, first_deferred)

    def _accept(
        self,
        accepts: tuple[int, ...],
        node: Any,
        key: Any,
        value: Any,
        outcome: Outcome,
        path: list[str | int] | None,
        deferred: list[Deferred] | None,
    ) -> Any:
        """Apply the rules ``accepts`` to ``value``, which is ``node[key]``: write the
        result back and note the late rules among them, or return ``REMOVED``."""
        if path is not None:
            path.append(key)
        value = self._apply(accepts, value, outcome, path)
        if value is not REMOVED:
            if deferred is not None:
                self._defer(accepts, node, key, value, path, deferred)
            node[key] = value
        if path is not None:
            path.pop()
        return value

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
                if type(value) in CONTAINERS:
                    assert rule.keep is not None
                    dropped = _prune(value, rule.keep, rule.keep.start)
                    if dropped:
                        outcome.rule_hits[rule.id] += dropped
                        if path is not None:
                            outcome.changes.append((rule.id, format_path(path)))  # type: ignore[union-attr]
                continue
            if rule.kind is FieldKind.TRANSFORM:
                value = self._transform(rule, value, outcome, path)
        return value

    def _transform(
        self, rule: FieldRule, value: Any, outcome: Outcome, path: list[str | int] | None
    ) -> Any:
        if type(value) in CONTAINERS or (rule.types and type(value) not in rule.types):
            return value
        assert rule.transform is not None
        scrubbed = rule.transform(value, outcome)
        if scrubbed != value or type(scrubbed) is not type(value):
            self._record(rule.id, outcome, path)
        return scrubbed

    def _defer(
        self,
        accepts: tuple[int, ...],
        node: Any,
        key: Any,
        value: Any,
        path: list[str | int] | None,
        deferred: list[Deferred],
    ) -> None:
        late = self._late_of.get(accepts)
        if late is None:
            late = self._late_of[accepts] = tuple(n for n in accepts if n in self._late)
        if late and type(value) not in CONTAINERS:
            deferred.append((node, key, late, None if path is None else list(path), value))

    @staticmethod
    def _record(rule_id: str, outcome: Outcome, path: list[str | int] | None) -> None:
        outcome.rule_hits[rule_id] += 1
        if path is not None:
            outcome.changes.append((rule_id, format_path(path)))  # type: ignore[union-attr]


def _delete(
    node: dict[str, Any] | list[Any],
    keys: list[Any],
    deferred: list[Deferred] | None,
    first_deferred: int,
) -> None:
    """Delete the removed keys or indices of ``node``, last first (so that list indices
    stay valid), and move down the deferred indices of its elements after the first
    removed one (deferred from ``first_deferred`` on)."""
    for key in keys[::-1]:  # a slice, not reversed(): mypyc fails on reversed(list[Any])
        del node[key]
    if deferred and type(node) is list:
        for number in range(first_deferred, len(deferred)):
            container, index, rules, path, value = deferred[number]
            if container is node:
                shift = sum(1 for gone in keys if gone < index)
                deferred[number] = (container, index - shift, rules, path, value)


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
        elif allow.descends(target) and type(value) in CONTAINERS:
            removed += _prune(value, allow, target)
        else:
            doomed.append(key)
    for key in reversed(doomed):
        del node[key]  # type: ignore[arg-type]
    return removed + len(doomed)


def format_path(path: Sequence[str | int]) -> str:
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif parts:
            parts.append(f".{step}")
        else:
            parts.append(step)
    return "".join(parts) or "$"
