"""The ``replace`` action: every value becomes one configured constant."""

from __future__ import annotations

import math
from dataclasses import dataclass

from filters.actions.base import JsonScalar


@dataclass(frozen=True, slots=True)
class Replace:
    """Return the configured ``value`` for every input value.

    ``value`` must itself be a JSON scalar (``str``, ``int``, finite ``float``, ``bool``,
    ``None``), checked once at compile time so that the output always serializes.
    """

    value: JsonScalar

    def __post_init__(self) -> None:
        v = self.value
        if v is not None and not isinstance(v, str | int | float):
            raise TypeError("replace value must be a JSON scalar (str, number, bool or null)")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("replace value must be a finite number")

    def apply(self, value: JsonScalar) -> JsonScalar:
        """Return the configured value, whatever ``value`` is."""
        return self.value


__all__ = ["Replace"]
