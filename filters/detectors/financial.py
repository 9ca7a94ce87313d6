"""Financial identifiers: payment card numbers, IBANs and US social security numbers."""

from __future__ import annotations

import re
from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import (
    ALNUM,
    DIGITS,
    after_unicode_escape,
    continues_before,
    dotted_continues_after,
    dotted_continues_before,
    framed,
    skip_unicode_escape,
)

_LETTERS: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# --- payment cards ----------------------------------------------------------------------

_16_TO_19: Final = (16, 17, 18, 19)
_14_TO_19: Final = (14, 15, 16, 17, 18, 19)
_13_TO_19: Final = (13, 14, 15, 16, 17, 18, 19)

# (lowest prefix, highest prefix, card lengths): IIN ranges of the major brands. All
# prefixes of one entry have the same number of digits.
_CARD_BRANDS: Final = (
    (4, 4, (13, 16, 19)),  # Visa
    (51, 55, (16,)),  # Mastercard
    (2221, 2720, (16,)),  # Mastercard 2-series
    (34, 34, (15,)),  # American Express
    (37, 37, (15,)),  # American Express
    (6011, 6011, _16_TO_19),  # Discover
    (644, 649, _16_TO_19),  # Discover
    (65, 65, _16_TO_19),  # Discover, RuPay
    (300, 305, _14_TO_19),  # Diners Club
    (3095, 3095, _14_TO_19),  # Diners Club
    (36, 36, _14_TO_19),  # Diners Club International
    (38, 39, _14_TO_19),  # Diners Club
    (3528, 3589, _16_TO_19),  # JCB
    (62, 62, _16_TO_19),  # UnionPay
    (81, 82, (16,)),  # UnionPay, RuPay
    (2200, 2204, _16_TO_19),  # Mir
    (50, 50, _13_TO_19),  # Maestro
    (56, 69, _13_TO_19),  # Maestro and the other 5x/6x debit ranges
    (508, 508, (16,)),  # RuPay
    (9792, 9792, (16,)),  # Troy
)
_CARD_LENGTHS_BY_PREFIX: Final = {
    f"{prefix:04d}".encode(): lengths
    for prefix in range(10_000)
    if (
        lengths := frozenset(
            length
            for low, high, brand_lengths in _CARD_BRANDS
            if low <= prefix // 10 ** (4 - len(str(low))) <= high
            for length in brand_lengths
        )
    )
}
"""The card lengths of every brand whose IIN range holds a four-digit prefix."""

# One run of 13-19 digits, or groups as printed: 4-4-4-4, 4-6-5 (Amex), 4-6-4 (Diners),
# 4-4-4-4-3 ... (one pattern: each pattern without a literal is a pass over every byte).
_CARD_TOKEN: Final = rb"[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{3,6}){2,4}"
_CARD_PATTERNS: Final = (
    framed(_CARD_TOKEN, trail=rb"[^0-9]", lead=rb"[^0-9]"),
    after_unicode_escape(_CARD_TOKEN, trail=rb"[^0-9]"),
)
_MORE_GROUPS: Final = re.compile(rb"(?:[ -][0-9]{3,6}(?![0-9])){1,8}")
"""Up to eight more groups (a second card and a stray group) after a grouped candidate."""


def luhn_valid(digits: bytes) -> bool:
    """The Luhn (mod 10) checksum of ASCII digits."""
    # Plain integer arithmetic over the bytes: compiled, it runs on machine integers
    # (~60 ns for 16 digits, against ~360 with slices and a translation table).
    total = 0
    doubled = len(digits) % 2  # the digits doubled are every second one from the right
    for index in range(len(digits)):
        digit = digits[index] - 48
        if index % 2 == doubled:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def is_card_number(digits: bytes) -> bool:
    """13-19 ASCII digits with a known brand prefix and length, and a valid Luhn sum."""
    return len(digits) in _CARD_LENGTHS_BY_PREFIX.get(digits[:4], ()) and luhn_valid(digits)


def _card_groups(buffer: bytes, start: int, end: int) -> list[tuple[int, int]] | None:
    """The digit groups of a candidate and of the groups that continue it (absolute
    offsets), or None when its layout is not a card's (groups too short to be how anyone
    prints a card number).

    The pattern stops after five groups, and hyperscan keeps only the leftmost start per
    end, so no candidate starts at the second of two cards printed side by side
    (``4111 1111 1111 1111 4111 1111 1111 1111``): a grouped candidate is read on over
    up to eight more groups so that every card of the run is found in one pass."""
    token = buffer[start:end]
    if len(token) < 20 and token.isdigit():
        return [(start, end)]
    # Groups of digits, one space or dash between each two (as the patterns match them).
    more = _MORE_GROUPS.match(buffer, end)
    if more is not None:
        token = buffer[start : more.end()]
    groups: list[tuple[int, int]] = []
    low = start
    for group in token.replace(b"-", b" ").split(b" "):
        high = low + len(group)
        groups.append((low, high))
        low = high + 1
    if any(high - low < 3 for low, high in groups[:-1]):
        return None
    return groups


def _same_separator_runs(buffer: bytes, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[first, last]`` group indexes of the maximal runs joined by one separator: a
    card is printed with spaces or with dashes, not both."""
    runs: list[tuple[int, int]] = []
    first = 0
    for index in range(1, len(groups)):
        if index > 1 and buffer[groups[index][0] - 1] != buffer[groups[index - 1][0] - 1]:
            runs.append((first, index - 1))
            first = index - 1
    runs.append((first, len(groups) - 1))
    return runs


def _lone_card(buffer: bytes, start: int, end: int) -> list[Span] | None:
    """The usual candidate, one card standing alone (``4111 1111 1111 1111``), checked in
    one go; None when the candidate needs the group-by-group reading below."""
    token = buffer[start:end]
    digits = token.translate(None, b" -")
    if not 13 <= len(digits) <= 19 or (b" " in token and b"-" in token):
        return None
    glued = continues_before(buffer, start, _LETTERS) or dotted_continues_before(buffer, start)
    if len(digits) == len(token):  # one run of digits: the groups have nothing to add
        glued = glued or buffer[end] in _LETTERS
        return [(start, end)] if not glued and is_card_number(digits) else []
    if glued or buffer[end] in _LETTERS or _more_groups_follow(buffer, end):
        return None
    groups = token.replace(b"-", b" ").split(b" ")
    if any(len(group) < 3 for group in groups[:-1]):
        return None
    return [(start, end)] if is_card_number(digits) else None


def _more_groups_follow(buffer: bytes, end: int) -> bool:
    """Whether digit groups go on after ``end`` (checked by hand first: a separator and a
    digit are rare after a card, and cheaper to look at than to match)."""
    return (
        buffer[end] in b" -"
        and end + 1 < len(buffer)
        and buffer[end + 1] in DIGITS
        and _MORE_GROUPS.match(buffer, end) is not None
    )


def _validate_card(buffer: bytes, start: int, end: int) -> list[Span]:
    start = skip_unicode_escape(buffer, start)
    lone = _lone_card(buffer, start, end)
    return lone if lone is not None else _cards_in_groups(buffer, start, end)


def _cards_in_groups(buffer: bytes, start: int, end: int) -> list[Span]:
    groups = _card_groups(buffer, start, end)
    if groups is None:
        return []
    # Next to a letter the digits belong to an id or hash (``a4111...``), and after
    # ``<digit>.`` they are a decimal fraction or part of a dotted run: the groups at
    # such an edge cannot start (or end) a card.
    glued_before = continues_before(buffer, start, _LETTERS) or dotted_continues_before(
        buffer, start
    )
    glued_after = buffer[groups[-1][1]] in _LETTERS
    # The candidate is as long as the pattern allows; a card followed or preceded by
    # another digit group ("4111 1111 1111 1111 2024") is found among its group runs,
    # every card of a run left to right.
    spans: list[Span] = []
    next_free = 1 if glued_before else 0
    last_allowed = len(groups) - (2 if glued_after else 1)
    # Digits before each group: a run of groups holds 13-19 digits or is no card.
    before = [0]
    for low, high in groups:
        before.append(before[-1] + high - low)
    for run_first, run_last in _same_separator_runs(buffer, groups):
        first = max(run_first, next_free)
        run_last = min(run_last, last_allowed)
        while first <= run_last:
            for last in range(run_last, first - 1, -1):
                count = before[last + 1] - before[first]
                if count > 19:
                    continue
                if count < 13:
                    break  # fewer groups hold fewer digits still
                low, high = groups[first][0], groups[last][1]
                digits = buffer[low:high].translate(None, b" -")
                if is_card_number(digits):
                    spans.append((low, high))
                    next_free, first = last + 1, last
                    break
            first += 1
    return spans


def card() -> Detector:
    """Payment card numbers of all major brands (IIN prefix + length + Luhn), written as
    one digit run or in groups separated by single spaces or dashes."""
    return Detector(
        name="card",
        patterns=_CARD_PATTERNS,
        validate=_validate_card,
        replacement=replacements.CARD,
        description="payment card numbers (brand prefix, length, Luhn)",
    )


# --- IBAN -------------------------------------------------------------------------------

# ISO 13616 lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: Final = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# The country code must be upper case: lower-case hex ids ("ab12cdef...") would otherwise
# be candidates by the hundred in a telemetry batch.
_IBAN_PATTERN: Final = framed(
    # Electronic form (DE89370400440532013000) or print form in groups of four
    # (DE89 3704 0044 0532 0130 00).
    rb"[A-Z]{2}[0-9]{2}[A-Za-z0-9]{11,30}"
    rb"|[A-Z]{2}[0-9]{2}(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,3})?",
    trail=rb"[^A-Za-z0-9]",
)


def iban_valid(text: str) -> bool:
    """Country length and ISO 7064 mod-97 check of a compact, upper-case IBAN."""
    if IBAN_LENGTHS.get(text[:2]) != len(text) or not text[2:4].isdigit():
        return False
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _validate_iban(buffer: bytes, start: int, end: int) -> list[Span]:
    if continues_before(buffer, start):
        return []
    compact = buffer[start:end].replace(b" ", b"").upper().decode("ascii")
    if not compact.isalnum() or not iban_valid(compact):
        return []
    return [(start, end)]


def iban() -> Detector:
    """International bank account numbers, compact or printed in groups of four, checked
    against the per-country length and the mod-97 check digits. The country code must be
    upper case as printed (``DE89...``, not ``de89...``)."""
    return Detector(
        name="iban",
        patterns=(_IBAN_PATTERN,),
        validate=_validate_iban,
        replacement=replacements.IBAN,
        description="IBANs (country length, mod-97)",
    )


# --- US social security numbers ---------------------------------------------------------

_SSN_TOKEN: Final = rb"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}"
_SSN_PATTERNS: Final = (
    framed(_SSN_TOKEN, trail=rb"[^0-9]", lead=rb"[^0-9]"),
    after_unicode_escape(_SSN_TOKEN, trail=rb"[^0-9]"),
)


def _validate_ssn(buffer: bytes, start: int, end: int) -> list[Span]:
    start = skip_unicode_escape(buffer, start)
    if continues_before(buffer, start, ALNUM) or buffer[end] in _LETTERS:
        return []
    if dotted_continues_before(buffer, start, b".-/+") or buffer[start - 1] == 0x2B:
        return []
    if dotted_continues_after(buffer, end, b".-/"):
        return []
    area = buffer[start : start + 3]
    group = buffer[start + 4 : start + 6]
    serial = buffer[end - 4 : end]
    if area in (b"000", b"666") or area >= b"900" or group == b"00" or serial == b"0000":
        return []
    return [(start, end)]


def ssn() -> Detector:
    """US social security numbers ``AAA-GG-SSSS`` (dashes or spaces), without the
    never-issued areas 000, 666 and 900-999, group 00 or serial 0000."""
    return Detector(
        name="ssn",
        patterns=_SSN_PATTERNS,
        validate=_validate_ssn,
        replacement=replacements.SSN,
        description="US social security numbers",
    )
