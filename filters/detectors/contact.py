"""Contact details: e-mail addresses and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import ANY, DIGITS, continues_before, framed, is_escape_tail
from filters.detectors.phone_rules import PhoneRules, phone_rules

# --- e-mail -----------------------------------------------------------------------------

_LOCAL_CHARS: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
)
# The candidate is "@domain" and its lead byte is the last character of the local part:
# with the local part inside the pattern, hyperscan's start-of-match tracking over long
# letter runs cost ~60x more (3.4 ms instead of 55 us on a 127 KB batch). The validator
# extends the span left over the local part.
_EMAIL_PATTERN: Final = framed(
    rb"@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,63}",
    trail=rb"[^a-z0-9-]",
    lead=rb"[a-z0-9._%+-]",
)

# Asset names such as ``logo@2x.png`` look like addresses; these endings are file types,
# not top-level domains (real ccTLDs such as .md or .py are deliberately not listed).
_FILE_EXTENSIONS: Final = frozenset(
    b"png jpg jpeg gif svg webp avif ico bmp tif tiff css js mjs cjs jsx tsx map json xml"
    b" html htm txt log lock yml yaml pdf java class jar wasm woff woff2 ttf otf eot mp3"
    b" mp4 webm wav".split()
)
_LOCAL_BYTES: Final = bytes(sorted(_LOCAL_CHARS))
_URL_AUTHORITY_STOP: Final = frozenset(b"/@?#&=\"'<>()[]{} \t\r\n")
_NOT_URL_AUTHORITY_STOP: Final = bytes(b for b in range(256) if b not in _URL_AUTHORITY_STOP)


def _in_url_authority(buffer: bytes, start: int) -> bool:
    """True when the candidate sits right after ``scheme://`` (possibly after ``user:``):
    that is URL userinfo, which :func:`filters.detectors.network.url_userinfo` replaces
    without swallowing the host."""
    if buffer[start - 1] not in b":/":
        return False
    before = buffer[max(0, start - 256) : start].rstrip(_NOT_URL_AUTHORITY_STOP)
    return before.endswith(b"://")


def _local_part_start(buffer: bytes, at: int) -> int:
    """Where the local part before ``@`` begins. It never starts with a dot (that ends
    the previous sentence) or with the letter of a JSON escape (``\\njohn@``)."""
    start = at
    while True:  # strip local-part bytes right to left, 64 at a time, in C
        low = max(0, start - 64)
        kept = len(buffer[low:start].rstrip(_LOCAL_BYTES))
        start = low + kept
        if kept or low == 0:
            break
    if buffer[start] == 0x2E or buffer.rfind(b"\\", max(0, start - 5), at) >= 0:
        while start < at and (buffer[start] == 0x2E or is_escape_tail(buffer, start)):
            start += 1
    return start


def _validate_email(buffer: bytes, at: int, end: int) -> list[Span]:
    start = _local_part_start(buffer, at)
    if start == at or _in_url_authority(buffer, start):
        return []
    top_level = buffer[buffer.rfind(b".", at, end) + 1 : end].lower()
    if top_level in _FILE_EXTENSIONS:
        return []
    return [(start, end)]


def email() -> Detector:
    """E-mail addresses (``john.doe+tag@mail.example.com``), replaced whole."""
    return Detector(
        name="email",
        patterns=(_EMAIL_PATTERN,),
        validate=_validate_email,
        replacement=replacements.EMAIL,
        caseless=True,
        description="e-mail addresses",
    )


# --- phone ------------------------------------------------------------------------------

DEFAULT_PHONE_REGIONS: Final = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "CA")

# A national number may not follow a digit, a dot, a dash, a plus, a slash or an
# underscore: that keeps dates, versions and ids (``2024-01-15``, ``v1.0.415``) from
# lending their tail to a phone candidate. Letters are allowed because in JSON the letter
# of an escape (``\n020 7946 0958``) may precede a number; the validator checks words.
_NATIONAL_LEAD: Final = rb"[^0-9.+/_-]"
# Patterns are written for hyperscan's speed (each pattern without a literal costs a pass
# over every byte); the validator re-checks the exact layout of each candidate.
_PHONE_PATTERNS: Final = (
    # International: +CC then digits, spaces, dots, dashes and parentheses.
    framed(rb"\+[1-9][0-9 ().-]{5,22}[0-9]", trail=rb"[^0-9]", lead=ANY),
    # Area code in parentheses: (415) 555-2671, (020) 7946 0958, (11) 91234-5678.
    framed(
        rb"\([0-9]{2,5}\)[ .-]?[0-9]{2,5}(?:[ .-][0-9]{2,5}){0,3}",
        trail=rb"[^0-9]",
        lead=ANY,
    ),
    # North American 3-3-4 (415-555-2671, 1 415 555 2671) or a trunk prefix 0 and
    # groups (020 7946 0958, 06 12 34 56 78, 03-1234-5678).
    framed(
        rb"(?:1[ .-])?[2-9][0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}|0[0-9]{1,5}(?:[ .-][0-9]{2,8}){1,4}",
        trail=rb"[^0-9]",
        lead=_NATIONAL_LEAD,
    ),
)
_INTERNATIONAL_LAYOUT: Final = re.compile(
    rb"\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,5}\)|[0-9]{1,6})){1,6}"
)
_PHONE_GROUP: Final = re.compile(rb"[0-9()+]+")
_NON_DIGITS: Final = re.compile(rb"[^0-9]")
_DATE_SHAPE: Final = re.compile(
    rb"[0-9]{1,2}([./-])[0-9]{1,2}\1[0-9]{2,4}|[0-9]{4}([./-])[0-9]{1,2}\2[0-9]{1,2}"
)
_MIN_DIGITS: Final = 7
_MAX_DIGITS: Final = 15


class _PhoneValidator:
    """Checks phone candidates against libphonenumber's metadata (see ``phone_rules``)."""

    __slots__ = ("_nanp", "_regions", "_rules")

    def __init__(self, rules: PhoneRules, regions: Sequence[str]) -> None:
        self._rules = rules
        self._regions = tuple(regions)
        self._nanp = any(rules.calling_code_by_region.get(r) == 1 for r in regions)

    def __call__(self, buffer: bytes, start: int, end: int) -> list[Span]:
        if self._preceded_by_number_part(buffer, start):
            return []
        if buffer[end] in b".-" and buffer[end + 1] in DIGITS:
            return []  # the middle of a longer dotted or dashed run
        token = buffer[start:end]
        if token[0] == 0x2B:  # "+": keep the part laid out like a phone number
            layout = _INTERNATIONAL_LAYOUT.match(token)
            token = layout.group() if layout is not None else b""
        elif _DATE_SHAPE.fullmatch(token):
            return []
        # The candidate is as long as the pattern allows; a phone number followed by more
        # digit groups (a year, a count) is found by dropping groups from the end.
        group_ends = [match.end() for match in _PHONE_GROUP.finditer(token)]
        for group_end in reversed(group_ends):
            if self._is_phone(token[:group_end]):
                return [(start, start + group_end)]
        return []

    @staticmethod
    def _preceded_by_number_part(buffer: bytes, start: int) -> bool:
        return continues_before(buffer, start) or buffer[start - 1] in b"+."

    def _is_phone(self, text: bytes) -> bool:
        digits = _NON_DIGITS.sub(b"", text).decode("ascii")
        if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
            return False
        rules = self._rules
        if text.startswith(b"+"):
            return rules.is_valid_international(digits)
        # Dialled from abroad: 00 (most of the world) or 011 (North America).
        if digits.startswith("00"):
            return rules.is_valid_international(digits[2:])
        if self._nanp and digits.startswith("011"):
            return rules.is_valid_international(digits[3:])
        return any(rules.is_valid_national(digits, region) for region in self._regions)


def phone(regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Detector:
    """Phone numbers written the way people write them: ``+CC`` international numbers,
    ``(area) number`` and national numbers with separators. Plain digit runs without a
    ``+`` or separator are not phone numbers (they are ids, amounts, timestamps).

    Each candidate must be a valid number per libphonenumber's metadata: international
    numbers by their calling code, national ones for one of ``regions`` (ISO 3166 codes).
    """
    rules = phone_rules()
    unknown = [region for region in regions if region not in rules.calling_code_by_region]
    if unknown:
        raise ValueError(f"unknown phone region code(s): {', '.join(unknown)}")
    return Detector(
        name="phone",
        patterns=_PHONE_PATTERNS,
        validate=_PhoneValidator(rules, regions),
        replacement=replacements.PHONE,
        description="phone numbers (validated with libphonenumber metadata)",
    )
