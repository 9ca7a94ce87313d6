"""Network identifiers: IP and MAC addresses, URL credentials, sensitive query values."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import (
    ALNUM,
    DIGITS,
    HEX,
    WHITESPACE,
    WHITESPACE_BYTES,
    after_unicode_escape,
    byte_table,
    continues_before,
    dotted_continues_after,
    framed,
    is_escape_tail,
    literal,
    run_end,
    run_start,
    skip_unicode_escape,
)

# --- IPv4 -------------------------------------------------------------------------------

# The last octet is never a lone "0": a network address (what ``generalize kind: ip`` writes
# for every address it keeps a /24 of) is not personal, and as a candidate it cost a
# callback and a validation per generalized address in a batch.
_IPV4_TOKEN: Final = rb"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.(?:[1-9][0-9]{0,2}|0[0-9]{1,2})"
_IPV4_PATTERNS: Final = (
    framed(_IPV4_TOKEN, trail=rb"[^0-9]", lead=rb"[^0-9.]"),
    after_unicode_escape(_IPV4_TOKEN, trail=rb"[^0-9]"),
)
_VERSION_WORD: Final = re.compile(rb"(?:version|ver\.?)[ :=]{0,2}$", re.IGNORECASE)
_VERSION_WORD_END: Final = frozenset(b" :=.nNrR")
_PRODUCT_CHARS: Final = ALNUM | frozenset(b"_.-")
_OCTET: Final = rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_DOTTED_QUAD: Final = re.compile(_OCTET + rb"(?:\." + _OCTET + rb"){3}")
"""Four octets of at most 255, without leading zeros."""
_PERSONAL_V4: Final = re.compile(
    rb"(?!127\.|255\.255\.255\.255$)" + _OCTET + rb"(?:\." + _OCTET + rb"){2}\."
    rb"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[1-9])"
)
"""A dotted quad without leading zeros that is not loopback (127/8), the broadcast
address or a network address ending in ``.0`` (``0.0.0.0`` included)."""


def _after_product_slash(buffer: bytes, slash: int) -> bool:
    """True for ``Chrome/`` style product tokens (a word starting with a letter, itself
    not a path segment or URL authority): what follows the slash is a version."""
    start = slash
    while start > 0 and buffer[start - 1] in _PRODUCT_CHARS:
        start -= 1
    word = buffer[start:slash]
    return bool(word) and word[:1].isalpha() and buffer[start - 1 : start] not in (b"/", b":")


def looks_like_version(buffer: bytes, start: int) -> bool:
    """True when the dotted number at ``start`` reads as a version: ``v1.2.3.4``,
    ``version 1.2.3.4``, ``Chrome/1.2.3.4``."""
    before = buffer[start - 1]
    if before in b"vV" and not is_escape_tail(buffer, start - 1):
        return True
    if before == 0x2F:  # "/"
        return _after_product_slash(buffer, start - 1)
    if before not in _VERSION_WORD_END:
        return False
    return _VERSION_WORD.search(buffer, max(0, start - 10), start) is not None


def ipv4_address(buffer: bytes, start: int, end: int) -> int | None:
    """The address a dotted-quad candidate spells, as an integer, or None when it is not
    one: octets over 255 or with leading zeros, a longer dotted run (``10.0.19041.1``,
    ``1.2.3.4.5``) or a version. Shared with the organization detector's CIDR check."""
    if _DOTTED_QUAD.fullmatch(buffer, start, end) is None:
        return None
    if dotted_continues_after(buffer, end) or looks_like_version(buffer, start):
        return None
    first, second, third, fourth = map(int, buffer[start:end].split(b"."))
    return first << 24 | second << 16 | third << 8 | fourth


def _validate_ipv4(buffer: bytes, start: int, end: int) -> list[Span]:
    # What ipv4_address checks, without building the integer (the hot path: a batch
    # holds dozens of addresses): octets and excluded addresses by their text.
    start = skip_unicode_escape(buffer, start)
    if _PERSONAL_V4.fullmatch(buffer, start, end) is None:
        return []  # an octet over 255 or with a leading zero, a network, loopback, broadcast
    if buffer[end] == 0x2E and buffer[end + 1] in DIGITS:
        return []  # part of a longer dotted run (10.0.19041.1, 1.2.3.4.5)
    if looks_like_version(buffer, start):
        return []
    return [(start, end)]


def ipv4() -> Detector:
    """IPv4 addresses, except ``0.0.0.0``, loopback, the broadcast address, network
    addresses ending in ``.0`` (``198.51.100.0``: what ``generalize kind: ip`` writes for
    a /24 names a network, not a host) and version numbers that happen to have four
    parts."""
    return Detector(
        name="ipv4",
        patterns=_IPV4_PATTERNS,
        validate=_validate_ipv4,
        replacement=replacements.IP,
        description="IPv4 addresses",
    )


# --- IPv6 -------------------------------------------------------------------------------

_H16: Final = rb"[0-9a-f]{1,4}"
_V4_TAIL: Final = rb"(?:\.[0-9]{1,3}){3}"
_ZONE: Final = rb"(?:%[0-9a-z_-]{1,32})?"
_IPV6_TRAIL: Final = rb"[^0-9a-z:%]"
_HEX_DIGIT: Final = rb"[0-9a-f]"
_FULL_FORM: Final = re.compile(
    _H16 + rb"(?::" + _H16 + rb"){5}(?::" + _H16 + rb":" + _H16 + rb"|:[0-9]{1,3}" + _V4_TAIL
    + rb")" + _ZONE + rb"(?![0-9a-z:%])",
    re.IGNORECASE,
)  # fmt: skip
"""Full form: eight groups, or six groups and an IPv4 tail, then a byte that cannot go on."""
IPV6_PATTERNS: Final = (
    # Compressed: fe80::1, 2001:db8::8a2e:370:7334, ::ffff:192.0.2.1, fe80::1%eth0.
    framed(
        rb"(?:" + _H16 + rb"(?::" + _H16 + rb"){0,6})?::(?:" + _H16 + rb"(?::" + _H16
        + rb"){0,6})?(?:" + _V4_TAIL + rb")?" + _ZONE,
        trail=_IPV6_TRAIL,
    ),
    # Full form: the candidate is only a seed, the first group and its colon (framed by
    # the byte before the group and a hex digit), and the validator reads the address
    # from there (_FULL_FORM). Written out, the full form has no literal hyperscan can
    # anchor on but the colon, which every JSON member has: a fifth to a quarter of
    # the scan of a 120 KB batch. The first group may also follow the letter or hex
    # digits of an escape (\\n2001:..., \\u00e92001:...) or a percent escape (%3A2001:...).
    framed(rb"[0-9a-f]{1,4}:", lead=rb"[^0-9a-z:.]", trail=_HEX_DIGIT),
    framed(rb"[0-9a-z][0-9a-f]{1,4}:", lead=rb"\\", trail=_HEX_DIGIT),
    framed(rb"u[0-9a-f]{4}[0-9a-f]{1,4}:", lead=rb"\\", trail=_HEX_DIGIT),
    framed(rb"[0-9a-f]{6}:", lead=rb"%", trail=_HEX_DIGIT),
)  # fmt: skip
_BEFORE_IPV6: Final = ALNUM | frozenset(b":.")
_PREFIX_MAX_GROUPS: Final = 3


def ipv6_address(buffer: bytes, start: int, end: int) -> ipaddress.IPv6Address | None:
    """The address an IPv6 candidate spells (zone id dropped), or None: invalid text, a
    word before it (``Foo::bad``), or no decimal digit at all (``dead::beef``, C++
    ``a::b``). Shared with the organization detector's CIDR check."""
    if continues_before(buffer, start, _BEFORE_IPV6):
        return None
    text = buffer[start:end].split(b"%", 1)[0].decode("ascii")
    if not any(char.isdigit() for char in text):
        return None
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        return None


def _is_personal_v6(address: ipaddress.IPv6Address) -> bool:
    if address.is_unspecified or address.is_loopback:
        return False
    mapped = address.ipv4_mapped
    return mapped is None or not (
        mapped.is_loopback or mapped.is_unspecified or not int(mapped) & 0xFF
    )


def _is_network_prefix(token: bytes) -> bool:
    """``2001:db8:1234::``, ``fe80::``: at most three groups and then ``::``, the form
    ``generalize kind: ip`` writes for a /48 (or shorter) prefix."""
    return token.endswith(b"::") and token.count(b":") <= _PREFIX_MAX_GROUPS + 1


def _full_form(buffer: bytes, colon: int) -> tuple[int, int]:
    """The full-form address whose first colon is ``colon`` (a seed's), as ``(start,
    end)``, or ``(0, 0)``. The first group is the (up to four) hex digits before the
    colon; whether the byte before it joins the address to a word is
    :func:`ipv6_address`'s to judge, as for every candidate."""
    start = colon - 1
    while start > colon - 4 and buffer[start - 1] in HEX:
        start -= 1
    found = _FULL_FORM.match(buffer, start)
    return (0, 0) if found is None else (start, found.end())


def _validate_ipv6(buffer: bytes, start: int, end: int) -> list[Span]:
    if buffer.find(b"::", start, end) < 0:  # a full-form seed: it ends with the colon
        start, end = _full_form(buffer, end - 1)
        if start == end:
            return []
    elif _is_network_prefix(buffer[start:end]):
        return []
    address = ipv6_address(buffer, start, end)
    if address is None or not _is_personal_v6(address):
        return []
    return [(start, end)]


def ipv6() -> Detector:
    """IPv6 addresses in every textual form (compressed, IPv4-mapped, with a zone id),
    except ``::``, ``::1`` and network prefixes: up to three groups then ``::``
    (``2001:db8:1234::``, what ``generalize kind: ip`` writes for a /48) and v4-mapped
    addresses of a network (``::ffff:192.0.2.0``). Times, MAC addresses, C++ scopes and
    hex codes do not parse as addresses or lack the ``::``/eight groups the candidate
    patterns need."""
    return Detector(
        name="ipv6",
        patterns=IPV6_PATTERNS,
        validate=_validate_ipv6,
        replacement=replacements.IP,
        caseless=True,
        description="IPv6 addresses",
    )


# --- MAC --------------------------------------------------------------------------------

_MAC_PATTERNS: Final = (
    # Colon or dash form; the validator requires one separator throughout.
    framed(rb"[0-9a-f]{2}[:-][0-9a-f]{2}(?:[:-][0-9a-f]{2}){4}", trail=rb"[^0-9a-z:-]"),
    # Cisco form.
    framed(rb"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", trail=rb"[^0-9a-z]"),
)
_NOT_PERSONAL_MAC: Final = frozenset({"000000000000", "ffffffffffff"})


def _validate_mac(buffer: bytes, start: int, end: int) -> list[Span]:
    if continues_before(buffer, start):
        return []
    # Part of a longer run of groups (an IPv6 address written with two-digit groups).
    if buffer[start - 1] in b":-." and buffer[start - 2] in HEX:
        return []
    if buffer[end] in b":-." and buffer[end + 1] in HEX:
        return []
    token = buffer[start:end]
    if token[2] in b":-" and token.count(token[2]) != 5:
        return []  # mixed separators
    digits = token.translate(None, b":-.").lower().decode("ascii")
    return [] if digits in _NOT_PERSONAL_MAC else [(start, end)]


def mac() -> Detector:
    """MAC addresses: ``00:1a:2b:3c:4d:5e``, ``00-1A-2B-3C-4D-5E``, ``001a.2b3c.4d5e``."""
    return Detector(
        name="mac",
        patterns=_MAC_PATTERNS,
        validate=_validate_mac,
        replacement=replacements.MAC,
        caseless=True,
        description="MAC addresses",
    )


# --- URL userinfo -----------------------------------------------------------------------

# The candidate is the "@" that ends a URL's userinfo, and the validator reads back to the
# "://" before it. Led by "://" instead (every URL holds one, and a JSON batch of events
# holds hundreds), the pattern cost the scan ~80 µs per 120 KB; "@" is rare.
_USERINFO_STOPS: Final = rb"[/?#@" + WHITESPACE + rb"\"'<>\\]"
"""Bytes a URL's userinfo cannot hold: its delimiters, whitespace, quotes and the
backslash (in JSON, the start of an escape)."""
_USERINFO_PATTERN: Final = framed(b"@", trail=rb"[^@/?#" + WHITESPACE + rb"\"'<>\\]")
_NOT_IN_USERINFO: Final = byte_table(_USERINFO_STOPS)
_SCHEME_CHARS: Final = ALNUM | frozenset(b"+.-")
_COLON: Final = 0x3A
_SLASH: Final = 0x2F


def _validate_userinfo(buffer: bytes, start: int, end: int) -> list[Span]:
    """``start`` is the "@"; the userinfo is the run before it back to a "://" that
    follows a scheme character (``[a-z0-9+.-]://[^/?#@...]+@``, read from the end)."""
    userinfo_start = run_start(buffer, 0, start, _NOT_IN_USERINFO)
    if (
        userinfo_start == start
        or userinfo_start < 4
        or buffer[userinfo_start - 1] != _SLASH
        or buffer[userinfo_start - 2] != _SLASH
        or buffer[userinfo_start - 3] != _COLON
        or buffer[userinfo_start - 4] not in _SCHEME_CHARS
    ):
        return []
    return [(userinfo_start, start)]


def url_userinfo() -> Detector:
    """The ``user:password`` part of ``scheme://user:password@host``; the scheme and
    host stay."""
    return Detector(
        name="url_userinfo",
        patterns=(_USERINFO_PATTERN,),
        validate=_validate_userinfo,
        replacement=replacements.USERINFO,
        caseless=True,
        description="credentials in URLs",
    )


# --- sensitive query parameters ---------------------------------------------------------

DEFAULT_SENSITIVE_QUERY_PARAMS: Final = (
    "token", "access_token", "refresh_token", "id_token", "auth_token", "password",
    "passwd", "pwd", "secret", "client_secret", "api_key", "apikey", "api-key", "key",
    "sig", "signature", "auth", "authorization", "session", "sessionid", "session_id",
    "sid", "code", "email", "jwt", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token",
)  # fmt: skip
_QUERY_VALUE_END: Final = rb"&#;" + WHITESPACE + rb"\"'<>\\\x00-\x1f\x7f"
_QUERY_VALUE_STOPS: Final = byte_table(rb"[" + _QUERY_VALUE_END + rb"]")
_BAD_NAME_BYTES: Final = frozenset(b"=&#;?") | WHITESPACE_BYTES


def _validate_query_value(buffer: bytes, start: int, end: int) -> list[Span]:
    # The candidate is "name=" (the pattern stops there: matching the value too made
    # hyperscan's start-of-match tracking cost more); the value runs to a delimiter.
    value_end = run_end(buffer, end, len(buffer), _QUERY_VALUE_STOPS)
    if end == value_end:
        return []
    if buffer.find(b"[", end, value_end) >= 0 and replacements.holds_replacement(
        buffer[end:value_end]
    ):
        return []
    return [(end, value_end)]


def sensitive_query_params(
    names: Sequence[str] = DEFAULT_SENSITIVE_QUERY_PARAMS,
) -> Detector:
    """The values of sensitive parameters in query strings (``?token=abc&x=1`` becomes
    ``?token=[redacted]&x=1``); names are matched case-insensitively."""
    encoded = [name.encode() for name in names]
    if not encoded or any(not name or _BAD_NAME_BYTES & set(name) for name in encoded):
        raise ValueError("query parameter names must be non-empty and free of = & # ; ?")
    alternation = b"|".join(literal(name) for name in encoded)
    pattern = framed(
        rb"(?:" + alternation + rb")=",
        trail=rb"[^" + _QUERY_VALUE_END + rb"]",
        lead=rb"[?&;]",
    )
    return Detector(
        name="sensitive_query_params",
        patterns=(pattern,),
        validate=_validate_query_value,
        replacement=replacements.REDACTED,
        caseless=True,
        description="values of sensitive query parameters",
    )
