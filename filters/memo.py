"""A bounded memo in front of a pure value action (hash, generalize).

Telemetry repeats itself: the same user id, user agent, client IP and page URLs come back
in event after event and request after request. A :class:`Memo` remembers the result of
a pure action for short strings, so a repeated value costs one dict lookup instead of an
HMAC or a URL parse.

Bounds and lifetime: at most ``entries`` results (``EngineLimits.memo_entries``, 0 turns
memos off) of inputs up to ``max_chars`` characters are held; when the memo is full it is
emptied and starts again (cheaper on the hot path than LRU bookkeeping, and a working set
that fits stays warm). Each compiled rule owns its memo, so it lives and dies with its
plan: a reload starts from empty ones. Each worker process has its own.

Security: the memo keeps raw inputs (ids, URLs with their query strings, IPs) and their
scrubbed forms in process memory after the request that carried them is done, up to the
bounds above, where without it they would be garbage once the request ends. That is no
new exposure to anyone outside the host (nothing in it is ever logged, counted by value or
sent), but a memory dump of a running worker shows recent raw values. Results are exactly
those of the action: a memoized plan produces the same bytes and counts as one without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULT_MAX_CHARS = 256
"""Longer inputs are not memoized: they rarely repeat and would make the bound costly."""


class _Results(dict[str, Any]):
    """The remembered results; a miss computes the result, keeping it for a short string."""

    __slots__ = ("_action", "_entries", "_max_chars")

    def __init__(self, action: Callable[[Any], Any], entries: int, max_chars: int) -> None:
        super().__init__()
        self._action = action
        self._entries = entries
        self._max_chars = max_chars

    def __missing__(self, value: Any) -> Any:
        found = self._action(value)
        # Strings only: as dict keys ``1 == 1.0 == True``, which must not share a result.
        # (Only strings are kept, so no other value can ever find one.)
        if type(value) is str and len(value) <= self._max_chars:
            if len(self) >= self._entries:
                self.clear()
            self[value] = found
        return found


class Memo:
    """``memo(value)`` is ``action(value)``, remembered for strings of up to ``max_chars``
    characters; ``action`` must be pure (same input, same output, no side effects).
    Other values go straight to ``action``. A memo is itself a field-rule transform
    (``memo(value, outcome)``; the outcome is not used); :attr:`apply` is the same
    without the outcome, one C-level dict lookup when the value is remembered."""

    __slots__ = ("_results", "apply")

    def __init__(
        self,
        action: Callable[[Any], Any],
        entries: int,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        if entries < 1 or max_chars < 0:
            raise ValueError("a memo needs at least one entry and a non-negative max_chars")
        self._results = _Results(action, entries, max_chars)
        self.apply: Callable[[Any], Any] = self._results.__getitem__

    def __len__(self) -> int:
        return len(self._results)

    def __call__(self, value: Any, _outcome: object = None) -> Any:
        return self._results[value]
