"""The ``mask`` action: hide a value's characters but keep its length and a few ends."""

from __future__ import annotations

from dataclasses import dataclass

from filters.actions.base import JsonScalar, check_range, number_text

_MAX_KEEP = 64
"""Keeping more than this many characters is not masking any more."""


@dataclass(frozen=True, slots=True)
class Mask:
    """Replace every character except the first ``keep_first`` and last ``keep_last`` with
    ``char``; the result has the input's length (in code points).

    ``"4111111111111111"`` → ``"************1111"``. A string no longer than
    ``keep_first + keep_last`` is masked completely, so a short value is never revealed
    whole. Numbers are masked as their canonical text and become strings (``4111`` with
    ``keep_last=0`` → ``"****"``). ``None`` and bools are returned unchanged: there is no
    text to mask, and masking ``true`` as ``"****"`` would reveal it by its length anyway.
    """

    keep_last: int = 4
    char: str = "*"
    keep_first: int = 0

    def __post_init__(self) -> None:
        check_range("mask keep_last", self.keep_last, 0, _MAX_KEEP)
        check_range("mask keep_first", self.keep_first, 0, _MAX_KEEP)
        # One code point, so masking preserves length exactly.
        if not isinstance(self.char, str) or len(self.char) != 1:
            raise ValueError("mask char must be exactly one character")

    def mask_text(self, text: str) -> str:
        """The masked form of ``text`` (see the class contract)."""
        n = len(text)
        first, last = self.keep_first, self.keep_last
        if n <= first + last:
            return self.char * n
        # text[n - last:] rather than text[-last:], which is the whole text when last == 0.
        return text[:first] + self.char * (n - first - last) + text[n - last :]

    def apply(self, value: JsonScalar) -> JsonScalar:
        """Mask strings and numbers; return ``None`` and bools unchanged."""
        if isinstance(value, str):
            return self.mask_text(value)
        if value is None or isinstance(value, bool):
            return value
        return self.mask_text(number_text(value))


__all__ = ["Mask"]
