"""Shared types and helpers of the value actions.

Every action is an immutable object built once from its parameters when the settings are
compiled, with an ``apply(value)`` method that the engine calls per value on the hot path.
Values are JSON scalars. Actions never raise on a value of the right type, and nothing they
raise or print (exceptions, ``repr``) contains a processed value or key material.
"""

from __future__ import annotations

import math
from typing import Protocol, TypeAlias

JsonScalar: TypeAlias = str | int | float | bool | None
"""A value the engine hands to an action: what a JSON parser yields for a leaf."""

_EXACT_FLOAT_INT = 2**53
"""Integral floats below this magnitude are exactly the integer a sender meant."""


class ValueAction(Protocol):
    """What the engine calls: one scalar in, one scalar out, never raising."""

    def apply(self, value: JsonScalar) -> JsonScalar:
        """Return the transformed value."""
        ...


def number_text(value: int | float) -> str:
    """Canonical text of a JSON number, the form the same number has inside a string.

    Ids and phone numbers arrive both as numbers and as strings, so actions that work on
    text (hash, mask) treat ``123``, ``123.0`` and ``"123"`` alike: integers print in
    decimal, integral floats below 2**53 print as the integer they hold, other floats use
    Python's shortest round-trip ``repr``. Ints too large for decimal conversion (CPython
    refuses above 4300 digits) print in hex rather than raising. Bools are not numbers here:
    callers handle them before calling this.
    """
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # over the digit limit (the message holds no digits)
            return hex(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
        return str(int(value))
    return repr(value)


def check_range(name: str, value: int, low: int, high: int) -> None:
    """Raise ``ValueError`` naming the parameter when ``value`` is outside ``[low, high]``.

    Used for action parameters at compile time; the message shows the parameter, which is
    configuration, never a payload value.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
