"""The ``truncate`` action: cap the length of strings."""

from __future__ import annotations

from dataclasses import dataclass

from filters.actions.base import JsonScalar, check_range

_MAX_LENGTH = 1 << 30


def _is_low_surrogate(ch: str) -> bool:
    return "\udc00" <= ch <= "\udfff"


def _is_high_surrogate(ch: str) -> bool:
    return "\ud800" <= ch <= "\udbff"


@dataclass(frozen=True, slots=True)
class Truncate:
    """Cut strings longer than ``max_length`` so that the result, including ``suffix``, is
    at most ``max_length`` characters; leave shorter strings and all non-strings unchanged.

    Lengths are counted in code points (Python ``len``). The cut never separates a UTF-16
    surrogate pair (which only appears in strings decoded with ``surrogatepass``): it moves
    one character earlier instead. ``suffix`` must be shorter than ``max_length`` so that
    some of the value always remains visible as context.
    """

    max_length: int
    suffix: str = "…"

    def __post_init__(self) -> None:
        check_range("truncate max_length", self.max_length, 1, _MAX_LENGTH)
        if not isinstance(self.suffix, str):
            raise TypeError("truncate suffix must be a string")
        if len(self.suffix) >= self.max_length:
            raise ValueError("truncate suffix must be shorter than max_length")

    def truncate_text(self, text: str) -> str:
        """``text`` cut to at most ``max_length`` characters including the suffix."""
        if len(text) <= self.max_length:
            return text
        cut = self.max_length - len(self.suffix)
        if _is_high_surrogate(text[cut - 1]) and _is_low_surrogate(text[cut]):
            cut -= 1
        return text[:cut] + self.suffix

    def apply(self, value: JsonScalar) -> JsonScalar:
        """Truncate strings; return everything else unchanged."""
        if isinstance(value, str):
            return self.truncate_text(value)
        return value


__all__ = ["Truncate"]
