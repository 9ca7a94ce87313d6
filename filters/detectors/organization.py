"""The organization dictionary: names, domains, host names, address ranges and base URLs
that identify the organization running the product.

Entries are matched case-insensitively anywhere in a value. Each entry is one literal
hyperscan pattern (unframed: literals compile ~15x faster without framing, so thousands
of entries cost well under a second), which makes the scan an Aho-Corasick-style
multi-literal search; the validator then checks the boundaries each kind of entry needs.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import (
    ALNUM,
    DIGITS,
    HEX,
    continues_after,
    continues_before,
    escape_tail_end,
    literal,
)
from filters.detectors.network import ipv4_address, ipv6_address

_V4_OCTET: Final = rb"[0-9]{1,3}"
_V4_CANDIDATE: Final = rb"\.".join([_V4_OCTET] * 4)
_H16: Final = rb"[0-9a-f]{1,4}"
_V6_CANDIDATES: Final = (
    rb"(?:" + _H16 + rb"(?::" + _H16 + rb"){0,6})?::(?:" + _H16 + rb"(?::" + _H16
    + rb"){0,6})?(?:(?:\.[0-9]{1,3}){3})?",
    _H16 + rb"(?::" + _H16 + rb"){7}",
)  # fmt: skip
_HOST_CHARS: Final = ALNUM | frozenset(b"-_")
_DOMAIN_CHARS: Final = ALNUM | frozenset(b"-.")
_URL_CONTINUES: Final = ALNUM | frozenset(b".-_")
_AROUND_V6: Final = HEX | frozenset(b":")
_AROUND_V4: Final = DIGITS | frozenset(b".")


class _Kind(Enum):
    NAME = "name"
    DOMAIN = "domain"
    HOSTNAME = "hostname"
    BASE_URL = "base_url"


@dataclass(frozen=True, slots=True)
class _Ranges:
    """Sorted, merged ``[first, last]`` integer address ranges of one IP version."""

    firsts: tuple[int, ...]
    lasts: tuple[int, ...]

    @classmethod
    def of(cls, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> _Ranges:
        merged: list[list[int]] = []
        for first, last in sorted((int(n[0]), int(n[-1])) for n in networks):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        return cls(tuple(r[0] for r in merged), tuple(r[1] for r in merged))

    def __contains__(self, address: int) -> bool:
        index = bisect.bisect_right(self.firsts, address) - 1
        return index >= 0 and address <= self.lasts[index]


class _OrganizationValidator:
    __slots__ = ("_kinds", "_v4", "_v6")

    def __init__(self, kinds: Mapping[bytes, frozenset[_Kind]], v4: _Ranges, v6: _Ranges) -> None:
        self._kinds = kinds
        self._v4 = v4
        self._v6 = v6

    def __call__(self, buffer: bytes, start: int, end: int) -> list[Span]:
        kinds = self._kinds.get(buffer[start:end].lower())
        if kinds is None:
            return self._address(buffer, start, end)
        for kind in (_Kind.BASE_URL, _Kind.DOMAIN, _Kind.HOSTNAME, _Kind.NAME):
            if kind in kinds and (span := _ENTRY_CHECKS[kind](buffer, start, end)):
                return [span]
        return []

    def _address(self, buffer: bytes, start: int, end: int) -> list[Span]:
        # An unframed candidate may start on the digits of an escape (\u000110.20.3.4).
        start = escape_tail_end(buffer, start)
        if b":" in buffer[start:end]:
            if continues_after(buffer, end, _AROUND_V6):
                return []
            v6 = ipv6_address(buffer, start, end)
            return [(start, end)] if v6 is not None and int(v6) in self._v6 else []
        if continues_before(buffer, start, _AROUND_V4) or continues_after(buffer, end, DIGITS):
            return []
        v4 = ipv4_address(buffer, start, end)
        return [(start, end)] if v4 is not None and v4 in self._v4 else []


def _name_span(buffer: bytes, start: int, end: int) -> Span | None:
    """Names match whole words: ``Acme`` but not ``Acmeville``."""
    if continues_before(buffer, start) or continues_after(buffer, end):
        return None
    return (start, end)


def _hostname_span(buffer: bytes, start: int, end: int) -> Span | None:
    """Host names match between dots or non-name characters (``jira01`` in
    ``jira01.corp``, not in ``jira01-old``)."""
    if continues_before(buffer, start, _HOST_CHARS) or continues_after(buffer, end, _HOST_CHARS):
        return None
    return (start, end)


def _domain_span(buffer: bytes, start: int, end: int) -> Span | None:
    """Domains match with any subdomain (the whole host name is replaced) but not as the
    tail of another domain (``notacme.com``)."""
    if continues_after(buffer, end, _HOST_CHARS):
        return None
    if buffer[start - 1] != 0x2E and continues_before(buffer, start, _DOMAIN_CHARS):
        return None
    while continues_before(buffer, start, _DOMAIN_CHARS):
        start -= 1
    while buffer[start] == 0x2E:
        start += 1
    return (start, end)


def _base_url_span(buffer: bytes, start: int, end: int) -> Span | None:
    """A base URL matches as the start of a URL; the path after it stays."""
    if continues_after(buffer, end, _URL_CONTINUES) or continues_before(buffer, start):
        return None
    return (start, end)


_ENTRY_CHECKS: Final = MappingProxyType(
    {
        _Kind.NAME: _name_span,
        _Kind.DOMAIN: _domain_span,
        _Kind.HOSTNAME: _hostname_span,
        _Kind.BASE_URL: _base_url_span,
    }
)


def _entries(kind: _Kind, values: Sequence[str], setting: str) -> Iterable[tuple[bytes, _Kind]]:
    for index, value in enumerate(values):
        text = value.strip()
        if kind is _Kind.BASE_URL:
            text = text.rstrip("/")
        elif kind is _Kind.DOMAIN:
            text = text.strip(".")
        if len(text) < 2:
            raise ValueError(f"{setting}[{index}] must have at least two characters")
        yield text.encode().lower(), kind


def _networks(
    cidrs: Sequence[str],
) -> tuple[list[ipaddress.IPv4Network], list[ipaddress.IPv6Network]]:
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for index, cidr in enumerate(cidrs):
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise ValueError(f"cidrs[{index}] is not an IP network") from None
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
        else:
            v6.append(network)
    return v4, v6


def _v4_candidates(networks: Sequence[ipaddress.IPv4Network]) -> list[bytes]:
    """Patterns that find every dotted quad in ``networks`` and few others: each range's
    whole leading octets are written out (``10\\.20\\.`` for ``10.20.0.0/16``), so the
    scan does not stop at every address, version or dotted number of a document. Octets
    never have leading zeros (:func:`ipv4_address` rejects them), so each address in a
    range has exactly one spelling of those octets. One pattern per number of leading
    octets, whatever the number of ranges."""
    if any(network.prefixlen < 8 for network in networks):
        return [_V4_CANDIDATE] if networks else []
    by_fixed: dict[int, set[bytes]] = {}
    for network in networks:
        fixed = min(network.prefixlen // 8, 4)
        octets = str(network.network_address).encode().split(b".")[:fixed]
        by_fixed.setdefault(fixed, set()).add(b"\\.".join(octets))
    return [
        rb"\.".join([b"(?:" + b"|".join(sorted(prefixes)) + b")", *[_V4_OCTET] * (4 - fixed)])
        for fixed, prefixes in sorted(by_fixed.items())
    ]


def organization_detector(
    names: Sequence[str] = (),
    domains: Sequence[str] = (),
    hostnames: Sequence[str] = (),
    cidrs: Sequence[str] = (),
    base_urls: Sequence[str] = (),
) -> Detector | None:
    """One detector for everything that names the organization, or None when the
    dictionary is empty. Raises ``ValueError`` naming the setting and index of a bad
    entry (an entry shorter than two characters, a CIDR that does not parse)."""
    kinds: dict[bytes, set[_Kind]] = {}
    for entries in (
        _entries(_Kind.NAME, names, "names"),
        _entries(_Kind.DOMAIN, domains, "domains"),
        _entries(_Kind.HOSTNAME, hostnames, "hostnames"),
        _entries(_Kind.BASE_URL, base_urls, "base_urls"),
    ):
        for text, kind in entries:
            kinds.setdefault(text, set()).add(kind)
    v4, v6 = _networks(cidrs)
    patterns = [literal(text) for text in kinds]
    patterns.extend(_v4_candidates(v4))
    if v6:
        patterns.extend(_V6_CANDIDATES)
    if not patterns:
        return None
    frozen_kinds = MappingProxyType({text: frozenset(k) for text, k in kinds.items()})
    return Detector(
        name="organization",
        patterns=tuple(patterns),
        validate=_OrganizationValidator(frozen_kinds, _Ranges.of(v4), _Ranges.of(v6)),
        replacement=replacements.ORG,
        caseless=True,
        description="the organization's names, domains, hosts, address ranges, base URLs",
        framed=False,
    )
