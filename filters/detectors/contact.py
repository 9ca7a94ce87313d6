"""Contact details: e-mail addresses and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import (
    ANY,
    DIGITS,
    HEX,
    after_unicode_escape,
    continues_before,
    framed,
    is_escape_tail,
    skip_unicode_escape,
)
from filters.detectors.phone_rules import PhoneRules, phone_rules

# --- e-mail -----------------------------------------------------------------------------

# Local parts may be UTF-8 (RFC 6531: "müller@example.de"): every byte >= 0x80 counts,
# so that no piece of such an address survives (in unspaced scripts the words before
# the address go too). Domains are matched in ASCII (IDNs travel as punycode), so that an
# address followed directly by CJK text still ends at its top-level domain.
_LOCAL_CHARS: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
) | frozenset(range(0x80, 0x100))
# The candidate is "@domain" and its lead byte is the last character of the local part:
# with the local part inside the pattern, hyperscan's start-of-match tracking over long
# letter runs cost ~60x more (3.4 ms instead of 55 us on a 127 KB batch). The validator
# extends the span left over the local part. The "@" may be percent-encoded, once or
# twice (a URL inside a URL): "jane.doe%40example.com" is an address in a URL path.
_DOMAIN: Final = rb"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,63}"
_LOCAL_END: Final = rb"[a-z0-9._%+\x80-\xff-]"
_EMAIL_PATTERNS: Final = (
    framed(rb"@" + _DOMAIN, trail=rb"[^a-z0-9-]", lead=_LOCAL_END),
    framed(rb"%(?:25)?40" + _DOMAIN, trail=rb"[^a-z0-9-]", lead=_LOCAL_END),
)
_AT_SIGN: Final = 0x40

# Asset names such as ``logo@2x.png`` look like addresses; these endings are file types,
# not top-level domains (real ccTLDs such as .md or .py are deliberately not listed).
_FILE_EXTENSIONS: Final = frozenset(
    b"png jpg jpeg gif svg webp avif ico bmp tif tiff css js mjs cjs jsx tsx map json xml"
    b" html htm txt log lock yml yaml pdf java class jar wasm woff woff2 ttf otf eot mp3"
    b" mp4 webm wav".split()
)
# In a file name an address may be followed by an extension, after a dot or a dash
# ("jane@example.com.png", "jane@example.com-1.png"): the domain is cut back to its
# last alphabetic label before the extension.
_DOMAIN_BEFORE_EXTENSION: Final = re.compile(_DOMAIN + rb"(?![a-z0-9])", re.IGNORECASE)
_RETINA_SCALE: Final = re.compile(rb"[0-9]+(?:\.[0-9]+)?x(?:[.-]|$)", re.IGNORECASE)
_NOT_TOP_LEVEL: Final = _FILE_EXTENSIONS | frozenset((b"min", b"bundle", b"chunk"))
_EXTENSION_ENDINGS: Final = frozenset(
    bytes((first, last))
    for extension in _FILE_EXTENSIONS
    for first in {extension[-2], bytes(extension[-2:-1]).upper()[0]}
    for last in {extension[-1], bytes(extension[-1:]).upper()[0]}
)
"""The last two characters of every file extension, in any case: most top-level
domains (``.com``, ``.org``, ``.de``) end otherwise, which spares reading the label."""
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
    the previous sentence), with the letter of a JSON escape (``\\njohn@``) or with a
    percent escape of a byte no local part holds (``mailto%3Ajohn@``, ``hi%20john@``)."""
    start = at
    while True:  # strip local-part bytes right to left, 64 at a time, in C
        low = start - 64 if start > 64 else 0
        kept = len(buffer[low:start].rstrip(_LOCAL_BYTES))
        start = low + kept
        if kept or not low:
            break
    if buffer.find(b"%", start, at) >= 0:
        start = _after_percent_separator(buffer, start, at)
    if buffer[start] == 0x2E or buffer.rfind(b"\\", start - 5 if start > 5 else 0, at) >= 0:
        while start < at and (buffer[start] == 0x2E or is_escape_tail(buffer, start)):
            start += 1
    return start


def _after_percent_separator(buffer: bytes, start: int, at: int) -> int:
    """``start``, or the end of the last percent escape in ``[start, at)`` that encodes a
    byte no local part holds (a separator such as ``:``, ``/``, ``=``, ``@`` or a space)."""
    percent = buffer.rfind(b"%", start, at)
    while percent >= 0:
        encoded = buffer[percent + 1 : percent + 3]
        if len(encoded) == 2 and HEX.issuperset(encoded) and int(encoded, 16) not in _LOCAL_CHARS:
            return percent + 3
        percent = buffer.rfind(b"%", start, percent)
    return start


def _without_file_extension(buffer: bytes, domain: int, end: int) -> int:
    """Where the address ends when the candidate's last label is a file type: an address
    in a file name (``jane@example.com.png``, ``jane@example.com-1.png``) ends at the
    top-level domain before the extension; an asset name (``logo@2x.png``,
    ``icon@2x.min.js``) has no address in it (0). ``domain`` is where the domain starts."""
    dot = buffer.rfind(b".", domain, end)
    match = _DOMAIN_BEFORE_EXTENSION.match(buffer, domain, dot)
    if match is None or _RETINA_SCALE.match(buffer, domain, dot):
        return 0
    domain_end = match.end()
    top_level = buffer[buffer.rfind(b".", domain, domain_end) + 1 : domain_end].lower()
    return 0 if top_level in _NOT_TOP_LEVEL else domain_end


def _validate_email(buffer: bytes, at: int, end: int) -> list[Span]:
    # The candidate starts at "@", or at the "%" of "%40" / "%2540".
    domain = at + 1 if buffer[at] == _AT_SIGN else buffer.find(b"40", at) + 2
    start = _local_part_start(buffer, at)
    if start == at or (buffer[start - 1] in b":/" and _in_url_authority(buffer, start)):
        return []
    if buffer[end - 2 : end] in _EXTENSION_ENDINGS:
        top_level = buffer[buffer.rfind(b".", domain, end) + 1 : end].lower()
        if top_level in _FILE_EXTENSIONS:
            end = _without_file_extension(buffer, domain, end)
            if not end:
                return []
    return [(start, end)]


def email() -> Detector:
    """E-mail addresses (``john.doe+tag@mail.example.com``), replaced whole."""
    return Detector(
        name="email",
        patterns=_EMAIL_PATTERNS,
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
# North American 3-3-4 (415-555-2671, 1 415 555 2671) or a trunk prefix 0 and groups
# (020 7946 0958, 06 12 34 56 78, 03-1234-5678). The trunk form is written loosely: its
# exact form next to the card pattern cost ~200 us more per 127 KB.
_NATIONAL_TOKEN: Final = (
    rb"(?:1[ .-])?[2-9][0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}"
    rb"|0[0-9]{1,5}[ .-][0-9][0-9 .-]{4,16}[0-9]"
)
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
    framed(_NATIONAL_TOKEN, trail=rb"[^0-9]", lead=_NATIONAL_LEAD),
    after_unicode_escape(_NATIONAL_TOKEN, trail=rb"[^0-9]"),
)
# Digit groups with single separators, optionally after an area code in parentheses;
# a national candidate is cut where its layout stops looking like that.
_NATIONAL_LAYOUT: Final = re.compile(rb"(?:\([0-9]{1,5}\)[ .-]?)?[0-9]+(?:[ .-][0-9]+)*")
_NANP_LAYOUT: Final = re.compile(
    rb"(?:1[ .-])?[2-9][0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}|\([2-9][0-9]{2}\) ?[0-9]{3}[ .-][0-9]{4}"
)
_INTERNATIONAL_LAYOUT: Final = re.compile(
    rb"\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,5}\)|[0-9]{1,6})){1,6}"
)
_PHONE_GROUP: Final = re.compile(rb"[0-9()+]+")
_DATE_SHAPE: Final = re.compile(
    rb"[0-9]{1,2}([./-])[0-9]{1,2}\1[0-9]{2,4}|[0-9]{4}([./-])[0-9]{1,2}\2[0-9]{1,2}"
)
_MIN_DIGITS: Final = 7
_MAX_DIGITS: Final = 15


class _PhoneValidator:
    """Checks phone candidates against libphonenumber's metadata (see ``phone_rules``)."""

    __slots__ = ("_nanp_regions", "_other_regions", "_rules")

    def __init__(self, rules: PhoneRules, regions: Sequence[str]) -> None:
        self._rules = rules
        # A number laid out 3-3-4 is North American; other layouts are tried against the
        # other regions. (Any ten digits are valid *somewhere*: "555 754 3627" is a
        # valid German, British and Brazilian number, but nobody writes those that way.)
        is_nanp = {region: rules.calling_code_by_region.get(region) == 1 for region in regions}
        self._nanp_regions = tuple(r for r in regions if is_nanp[r])
        self._other_regions = tuple(r for r in regions if not is_nanp[r])

    def __call__(self, buffer: bytes, start: int, end: int) -> list[Span]:
        start = skip_unicode_escape(buffer, start)
        if buffer[end] in b".-" and buffer[end + 1] in DIGITS:
            return []  # the middle of a longer dotted or dashed run
        token = buffer[start:end]
        glued = self._preceded_by_number_part(buffer, start)
        if token[0] == 0x2B:  # "+": keep the part laid out like a phone number
            layout = _INTERNATIONAL_LAYOUT.match(token)
            number_end = 0 if glued or layout is None else self._international_end(layout.group())
            return [(start, start + number_end)] if number_end else []
        layout = _NATIONAL_LAYOUT.match(token)
        if layout is None:
            return []
        token = layout.group()
        if _DATE_SHAPE.fullmatch(token) or self._follows_calling_code(buffer, start):
            return []
        # Hyperscan reports each end once, with its leftmost start: a candidate that
        # starts with a stray group ("x00 020 7946 0958") hides a number that starts at a
        # later group, so later groups that can start a number ("0", "(") are tried too.
        for group in _PHONE_GROUP.finditer(token):
            offset = group.start()
            if offset == 0 and glued:
                continue
            number_end, digits = _longest_number(token[offset:], _MAX_DIGITS)
            if len(digits) < _MIN_DIGITS:
                break
            layout = _NANP_LAYOUT.fullmatch(token, offset, offset + number_end)
            if offset > 0 and not layout and token[offset] not in b"0(":
                continue  # the tail of a number is not a number
            if self._is_national(digits, layout):
                return [(start + offset, start + offset + number_end)]
        return []

    def _follows_calling_code(self, buffer: bytes, start: int) -> bool:
        """True for the national part of an international number (``555 754 3627`` in
        ``+1 555 754 3627``): that number was judged whole, as an international one."""
        index = start - 1
        if buffer[index] in b" .-(":
            index -= 1
        digits_end = index
        while buffer[index] in DIGITS and digits_end - index < 3:
            index -= 1
        if buffer[index] != 0x2B or index == digits_end:
            return False
        calling_code = buffer[index + 1 : digits_end + 1].decode()
        return self._rules.calling_code(calling_code) is not None

    @staticmethod
    def _preceded_by_number_part(buffer: bytes, start: int) -> bool:
        return continues_before(buffer, start) or buffer[start - 1] in b"+."

    def _international_end(self, token: bytes) -> int:
        """Where the valid international number that ``token`` starts with ends, or 0."""
        digits = token.translate(None, b"+ ().-").decode()
        rules = self._rules
        code = rules.calling_code(digits)
        if code is None:
            return 0
        longest = rules.longest_with_code(code)
        number_end = len(token)
        if len(digits) > longest:
            number_end, digits = _longest_number(token, longest)
        valid = _MIN_DIGITS <= len(digits) <= _MAX_DIGITS
        return number_end if valid and rules.is_valid_with_code(code, digits) else 0

    def _is_national(self, digits: str, north_american_layout: object) -> bool:
        if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
            return False
        rules = self._rules
        # Dialled from abroad: 00 (most of the world) or 011 (North America).
        if digits.startswith("00"):
            return rules.is_valid_international(digits[2:])
        if digits.startswith("011") and self._nanp_regions:
            return rules.is_valid_international(digits[3:])
        regions = self._nanp_regions if north_american_layout else self._other_regions
        return any(rules.is_valid_national(digits, region) for region in regions)


def _longest_number(token: bytes, limit: int) -> tuple[int, str]:
    """Where the number ends and its digits. The candidate is as long as the pattern
    allows; a phone number followed by more digit groups (a year, a count) is found by
    dropping the groups that make it longer than ``limit`` digits."""
    number_end, digits = 0, b""
    for group in _PHONE_GROUP.finditer(token):
        more = group.group().translate(None, b"()+")
        if len(digits) + len(more) > limit:
            break
        number_end, digits = group.end(), digits + more
    return number_end, digits.decode()


def phone(regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Detector:
    """Phone numbers written the way people write them: ``+CC`` international numbers,
    ``(area) number`` and national numbers with separators. Plain digit runs without a
    ``+`` or separator are not phone numbers (they are ids, amounts, timestamps).

    Each candidate must be a valid number per libphonenumber's metadata: international
    numbers by their calling code, national ones for one of ``regions`` (ISO 3166 codes;
    a number laid out 3-3-4 for the North American ones among them, other layouts for
    the others).
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
