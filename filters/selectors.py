"""Selector grammar and the path automaton that matches many selectors in one walk.

Grammar (a selector names places in a JSON-like document)::

    selector := step ( "." step | "[" index "]" )*
    step     := "**" | "*" | NAME | GLOB | QUOTED
    index    := "*" | DIGITS | QUOTED

* ``a.b`` — key ``b`` inside key ``a``; ``"weird.key"`` or ``["weird.key"]`` quotes a key.
* ``*`` — any one key **or** list element; ``[*]`` — any list element; ``[2]`` — element 2.
* ``**`` — any number (zero or more) of keys and list elements.
* ``*password*``, ``*_token``, ``user?id`` — a key-name glob (``*`` and ``?``).

All selectors of a policy are compiled into one :class:`PathAutomaton`, a lazily built
deterministic automaton over path steps: the walker feeds it one key at a time, gets back
a state, and skips every subtree whose state is dead. Transitions are memoized (bounded)
so a key seen once costs one dict lookup afterwards.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final


class SelectorError(ValueError):
    """A selector that does not parse; the message says where in the selector."""


class StepKind(Enum):
    KEY = "key"
    GLOB = "glob"
    ANY = "any"
    ANY_INDEX = "any-index"
    INDEX = "index"
    DEEP = "deep"


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    name: str | None = None
    index: int | None = None
    pattern: re.Pattern[str] | None = None

    def matches(self, key: str | int, ignore_case: bool) -> bool:
        """Whether this (non-deep) step accepts one path step."""
        if self.kind is StepKind.ANY:
            return True
        if isinstance(key, int):
            return self.kind is StepKind.ANY_INDEX or (
                self.kind is StepKind.INDEX and self.index == key
            )
        if self.kind is StepKind.KEY:
            return key.casefold() == self.name if ignore_case else key == self.name
        if self.kind is StepKind.GLOB:
            assert self.pattern is not None
            return self.pattern.fullmatch(key) is not None
        return False


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector; ``text`` is what the admin wrote (used in errors and explain)."""

    text: str
    steps: tuple[Step, ...]
    ignore_case: bool = False


_PLAIN_NAME = re.compile(r"[^.\[\]\"]+")


def parse_selector(text: str, *, ignore_case: bool = False) -> Selector:
    """Parse one selector. Raises :class:`SelectorError` naming the offending position."""
    if not text or text.strip() != text:
        raise SelectorError("a selector must be a non-empty string without outer spaces")
    steps: list[Step] = []
    position = 0
    expect_step = True
    while position < len(text):
        char = text[position]
        if char == "[":
            step, position = _parse_index(text, position, ignore_case)
            steps.append(step)
            expect_step = False
        elif char == ".":
            if expect_step:
                raise SelectorError(f"empty step at position {position}")
            position += 1
            expect_step = True
            if position == len(text):
                raise SelectorError("a selector cannot end with '.'")
        elif expect_step:
            step, position = _parse_name(text, position, ignore_case)
            steps.append(step)
            expect_step = False
        else:
            raise SelectorError(f"expected '.' or '[' at position {position}")
    return Selector(text=text, steps=tuple(steps), ignore_case=ignore_case)


def _parse_name(text: str, position: int, ignore_case: bool) -> tuple[Step, int]:
    if text[position] == '"':
        name, position = _parse_quoted(text, position)
        return _key_step(name, ignore_case), position
    match = _PLAIN_NAME.match(text, position)
    if match is None:
        raise SelectorError(f"expected a key name at position {position}")
    name = match.group()
    end = match.end()
    if name == "**":
        return Step(StepKind.DEEP), end
    if name == "*":
        return Step(StepKind.ANY), end
    if "**" in name:
        raise SelectorError(f"'**' must be a whole step (position {position})")
    if "*" in name or "?" in name:
        flags = re.IGNORECASE if ignore_case else 0
        pattern = re.compile(fnmatch.translate(name), flags)
        return Step(StepKind.GLOB, name=name, pattern=pattern), end
    return _key_step(name, ignore_case), end


def _key_step(name: str, ignore_case: bool) -> Step:
    return Step(StepKind.KEY, name=name.casefold() if ignore_case else name)


def _parse_index(text: str, position: int, ignore_case: bool) -> tuple[Step, int]:
    close = text.find("]", position)
    inner_start = position + 1
    if inner_start < len(text) and text[inner_start] == '"':
        name, after = _parse_quoted(text, inner_start)
        if after >= len(text) or text[after] != "]":
            raise SelectorError(f"expected ']' at position {after}")
        return _key_step(name, ignore_case), after + 1
    if close == -1:
        raise SelectorError(f"unclosed '[' at position {position}")
    inner = text[inner_start:close]
    if inner == "*":
        return Step(StepKind.ANY_INDEX), close + 1
    if inner.isdigit():
        return Step(StepKind.INDEX, index=int(inner)), close + 1
    raise SelectorError(f"expected '*', a number or a quoted key inside [] at position {position}")


def _parse_quoted(text: str, position: int) -> tuple[str, int]:
    end = text.find('"', position + 1)
    if end == -1:
        raise SelectorError(f"unclosed quote at position {position}")
    if end == position + 1:
        raise SelectorError(f"empty quoted key at position {position}")
    return text[position + 1 : end], end + 1


# --- the automaton -------------------------------------------------------------------

NfaState = tuple[int, int]
"""(selector number, number of steps consumed)."""

_ANY_ELEMENT = -1
"""The path step every list element becomes when no selector names a specific index."""

_MAX_MEMO = 65_536

StateRow = tuple[dict[str | int, int], tuple[int, ...], bool, bool, set[str | int]]
"""One automaton state: (memo of transitions, accepted labels, descends, exact keys only,
passive keys: the memoized keys whose transition accepts nothing)."""


class PathAutomaton:
    """Matches a set of selectors against paths, one step at a time.

    States are small ints; :attr:`start` is where a walk begins and :attr:`DEAD` means no
    selector can match at or below this point. ``accepts(state)`` lists the labels of the
    selectors that match exactly at the current path (ascending, each once; a selector's
    label defaults to its position, and rules with several selectors share one label);
    ``descends(state)`` tells whether anything below can still match. Transitions are
    memoized per state and key; the tables are bounded so hostile payloads with millions
    of distinct keys cost time, never unbounded memory.
    """

    DEAD: Final = -1

    def __init__(self, selectors: Sequence[Selector], labels: Sequence[int] | None = None) -> None:
        self._selectors = tuple(selectors)
        self.deep_from_start = any(
            selector.steps and selector.steps[0].kind is StepKind.DEEP for selector in selectors
        )
        """Whether some selector starts with ``**``: then every state descends, and a walk
        visits every container of a document (except those a rule removed)."""
        self._labels = tuple(labels) if labels is not None else tuple(range(len(selectors)))
        self._uses_indices = any(
            step.kind is StepKind.INDEX for selector in selectors for step in selector.steps
        )
        self._state_ids: dict[frozenset[NfaState], int] = {}
        self._state_sets: list[frozenset[NfaState]] = []
        self._accepting: list[tuple[int, ...]] = []
        self._descends: list[bool] = []
        self._memo: list[dict[str | int, int]] = []
        self._only_exact_keys: list[bool] = []
        self._passive_keys: list[set[str | int]] = []
        self.rows: list[StateRow] = []
        """Per state: ``(memo, accepts, descends, exact_only, passive_keys)``. The hot
        walker reads these directly (read-only) and calls :meth:`step` only on a memo
        miss; the list grows as new states are discovered. ``passive_keys`` holds the
        keys in ``memo`` whose target accepts nothing (dead ones included): a walker can
        pass over a scalar under such a key unread."""
        self.start = self._intern(
            self._closure({(number, 0) for number in range(len(self._selectors))})
        )

    @property
    def uses_indices(self) -> bool:
        """Whether any selector names a list index; if not, every element of a list
        leads to the same state."""
        return self._uses_indices

    def accepts(self, state: int) -> tuple[int, ...]:
        return self._accepting[state]

    def descends(self, state: int) -> bool:
        return self._descends[state]

    def step(self, state: int, key: str | int) -> int:
        """The state after one path step: a dict key (str) or a list index (int)."""
        if isinstance(key, int) and not self._uses_indices:
            key = _ANY_ELEMENT
        memo = self._memo[state]
        found = memo.get(key)
        if found is not None:
            return found
        if self._only_exact_keys[state]:
            # Every exact key was precomputed in _intern, so anything else is dead.
            return self.DEAD
        target = self._transition(state, key)
        if len(memo) < _MAX_MEMO:
            self._remember(state, key, target)
        return target

    def _remember(self, state: int, key: str | int, target: int) -> None:
        self._memo[state][key] = target
        if target == self.DEAD or not self._accepting[target]:
            self._passive_keys[state].add(key)

    def _transition(self, state: int, key: str | int) -> int:
        targets: set[NfaState] = set()
        for number, position in self._state_sets[state]:
            selector = self._selectors[number]
            if position >= len(selector.steps):
                continue
            current = selector.steps[position]
            if current.kind is StepKind.DEEP:
                targets.add((number, position))
            elif current.matches(key, selector.ignore_case):
                targets.add((number, position + 1))
        if not targets:
            return self.DEAD
        return self._intern(self._closure(targets))

    def _closure(self, states: set[NfaState]) -> frozenset[NfaState]:
        """Add the states reachable by letting a ``**`` match zero steps."""
        pending = list(states)
        closed = set(states)
        while pending:
            number, position = pending.pop()
            steps = self._selectors[number].steps
            if position < len(steps) and steps[position].kind is StepKind.DEEP:
                following = (number, position + 1)
                if following not in closed:
                    closed.add(following)
                    pending.append(following)
        return frozenset(closed)

    def _intern(self, states: frozenset[NfaState]) -> int:
        known = self._state_ids.get(states)
        if known is not None:
            return known
        state = len(self._state_sets)
        self._state_ids[states] = state
        self._state_sets.append(states)
        pending = self._pending_steps(states)
        self._accepting.append(
            tuple(
                sorted(
                    {
                        self._labels[number]
                        for number, position in states
                        if position == len(self._selectors[number].steps)
                    }
                )
            )
        )
        self._descends.append(bool(pending))
        self._memo.append({})
        only_exact = all(
            step.kind is StepKind.KEY and not ignore_case for step, ignore_case in pending
        )
        self._only_exact_keys.append(only_exact)
        self._passive_keys.append(set())
        self.rows.append(
            (
                self._memo[state],
                self._accepting[state],
                bool(pending),
                only_exact,
                self._passive_keys[state],
            )
        )
        if only_exact:
            for step, _ in pending:
                assert step.name is not None
                self._remember(state, step.name, self._transition(state, step.name))
        return state

    def _pending_steps(self, states: frozenset[NfaState]) -> list[tuple[Step, bool]]:
        return [
            (self._selectors[number].steps[position], self._selectors[number].ignore_case)
            for number, position in states
            if position < len(self._selectors[number].steps)
        ]
