"""The ``generalize`` action: keep a coarse, useful form of a value and drop the rest.

* :class:`GeneralizeIp` — an IP address becomes its network (/24, /48 by default).
* :class:`GeneralizeUrl` — a URL loses userinfo, query (except allowlisted params), fragment.
* :class:`GeneralizeTimestamp` — a timestamp is floored to a minute/hour/day/week/month.
* :class:`GeneralizeUserAgent` — a user agent becomes ``"<Family> <major> / <OS>"``.

Each is idempotent (``g(g(x)) == g(x)``), so scrubbing already-scrubbed data changes nothing,
and fails closed: a value that cannot be understood becomes a fixed marker instead of
passing through unvalidated.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote_plus

from filters.actions._useragent import UserAgentClassifier
from filters.actions.base import JsonScalar, check_range

# --------------------------------------------------------------------------------------
# IP addresses
# --------------------------------------------------------------------------------------

_V4_MAPPED = 0xFFFF  # ::ffff:0:0/96, the address shifted right by 32 bits
_NAT64 = 0x0064FF9B_0000_0000_0000_0000  # 64:ff9b::/96, shifted right by 32 bits
_SIX_TO_FOUR = 0x2002  # 2002::/16, shifted right by 112 bits
_MAX_PORT = 65535


def _prefix_mask(prefix: int, bits: int) -> int:
    """Integer netmask with the top ``prefix`` of ``bits`` bits set."""
    return ((1 << prefix) - 1) << (bits - prefix)


def _dotted(ip: int) -> str:
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4_PORT = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?::([0-9]{{1,5}}))?")
"""Strict dotted quad with an optional port. Like ``ipaddress`` it rejects leading zeros
(``010`` is octal to some parsers, so its meaning is ambiguous) and non-ASCII digits."""


def _v4_layout(prefix: int) -> tuple[int, int, str]:
    """How a /prefix network address is written: (whole octets kept, mask of the next
    octet or 0 if none is cut, the text of the zero octets after them)."""
    full, rest = divmod(prefix, 8)
    if rest == 0:
        return full, 0, ".".join(["0"] * (4 - full))
    return full, (0xFF << (8 - rest)) & 0xFF, ".0" * (3 - full)


def _parse_v6(text: str) -> int | None:
    """IPv6 (with optional ``%zone``, which is dropped) to int, or ``None``."""
    text = text.partition("%")[0]
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def _valid_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= _MAX_PORT


@dataclass(frozen=True, slots=True)
class GeneralizeIp:
    """Replace an IP address by its network address: ``"192.0.2.77"`` → ``"192.0.2.0"``,
    ``"2001:db8:1234:5678::1"`` → ``"2001:db8:1234::"`` (with the default /24 and /48).

    Accepts ``ip``, ``ip:port``, ``[v6]`` and ``[v6]:port`` (the port is dropped, as are
    IPv6 zone ids) with surrounding whitespace. IPv4 embedded in IPv6 is generalized with
    ``ipv4_prefix`` so it cannot slip through a /48: v4-mapped ``::ffff:a.b.c.d`` (output in
    that dotted form), 6to4 ``2002::/16`` and NAT64 ``64:ff9b::/96``.

    ``None`` is returned unchanged (there is nothing in it). Anything else that is not an
    IP address — other strings, numbers, bools — becomes ``fallback``, so no unvalidated
    value passes through a rule meant to hold addresses.
    """

    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    fallback: JsonScalar = "[ip]"
    _v4_mask: int = field(init=False, repr=False, compare=False, default=0)
    _v4_layout: tuple[int, int, str] = field(
        init=False, repr=False, compare=False, default=(0, 0, "")
    )

    def __post_init__(self) -> None:
        check_range("ipv4_prefix", self.ipv4_prefix, 0, 32)
        check_range("ipv6_prefix", self.ipv6_prefix, 0, 128)
        object.__setattr__(self, "_v4_mask", _prefix_mask(self.ipv4_prefix, 32))
        object.__setattr__(self, "_v4_layout", _v4_layout(self.ipv4_prefix))

    def apply(self, value: JsonScalar) -> JsonScalar:
        """The generalized address, ``None`` for ``None``, else ``fallback``."""
        if isinstance(value, str):
            out = self.generalize_text(value)
            return self.fallback if out is None else out
        if value is None:
            return None
        return self.fallback

    def generalize_text(self, text: str) -> str | None:
        """The generalized address in ``text``, or ``None`` if it holds no address."""
        text = text.strip()
        m = _V4_PORT.fullmatch(text)
        if m is not None:
            # The common case, done on the matched text: ~4x faster than via ipaddress.
            if m[5] is not None and int(m[5]) > _MAX_PORT:
                return None
            return self._v4_text(m)
        if text.startswith("["):
            host, sep, port = text[1:].partition("]")
            if not sep or (port and not (port[0] == ":" and _valid_port(port[1:]))):
                return None
            return self._v6_text(host)
        return self._v6_text(text)

    def _v4_text(self, m: re.Match[str]) -> str:
        # Slicing the validated text beats int arithmetic and formatting by ~2x.
        full, partial, zeros = self._v4_layout
        if full == 4:
            return m.string[: m.end(4)]
        head = m.string[: m.end(full)] + "." if full else ""
        if partial:
            return head + str(int(m[full + 1]) & partial) + zeros
        return head + zeros

    def _v6_text(self, text: str) -> str | None:
        ip = _parse_v6(text)
        if ip is None:
            return None
        high = ip >> 32
        if high == _V4_MAPPED:
            return "::ffff:" + _dotted(ip & self._v4_mask)
        prefix = self.ipv6_prefix
        if high == _NAT64:
            prefix = min(prefix, 96 + self.ipv4_prefix)
        elif ip >> 112 == _SIX_TO_FOUR:
            prefix = min(prefix, 16 + self.ipv4_prefix)
        return ipaddress.IPv6Address(ip & _prefix_mask(prefix, 128)).compressed


# --------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"[/\\]*([^/\\]*)")
"""Separators, then one path segment. ``\\`` separates too, as browsers treat it as
``/`` in http(s) URLs."""


def _segment_span(text: str, pos: int) -> tuple[int, int]:
    """Start and end of the first segment at or after ``pos``, skipping separators."""
    m = _SEGMENT.match(text, pos)
    return m.span(1) if m is not None else (len(text), len(text))  # it always matches


def _strip_userinfo(base: str) -> str:
    """``base`` (a URL without query and fragment) without its userinfo.

    Deliberately more eager than RFC 3986, because a leaked password is worse than a
    mangled path: the candidate host is the first non-empty segment (split at ``/`` and
    ``\\``), or the second if the first looks like a scheme (ends with ``:``, whatever
    else it holds: ``1http://u:p@h`` and ``http:/u:p@h`` lose ``u:p`` too). Everything up to
    the last ``@`` in the candidate is dropped (passwords may hold ``@``); if that empties
    the candidate, its separators go too and the next segment is examined the same way, so
    that applying this twice changes nothing. Without an authority (``user:pw@host/x``,
    ``mailto:a@b``) the first segment is the candidate: an ``@`` there is credentials or an
    address far more often than a real path. ``@`` further along the path is kept.
    Linear time: each segment is looked at once.
    """
    kept: list[str] = []
    pos = 0
    scheme_seen = False
    while True:
        start, end = _segment_span(base, pos)
        at = base.rfind("@", start, end)
        if at >= 0:
            kept.append(base[pos:start])
            pos = at + 1
            if pos == end:  # nothing left of the segment: its separators go too
                pos = _segment_span(base, end)[0]
            continue
        if scheme_seen or end == start or base[end - 1] != ":":
            break
        scheme_seen = True
        kept.append(base[pos:end])
        pos = end
    kept.append(base[pos:])
    return "".join(kept)


@dataclass(frozen=True, slots=True)
class GeneralizeUrl:
    """Reduce a URL to scheme, host, port and path.

    Userinfo is dropped; query parameters are dropped except those named in
    ``allow_params`` (kept in their original order with their values; names match as
    written or percent-decoded); the fragment is dropped unless ``keep_fragment`` (SPAs
    keep routes there, but also OAuth tokens). The path is kept verbatim: ids or e-mail
    addresses inside it are for the ``redact`` detectors.

    Works on any string — absolute and relative URLs, ``//host/path``, bare paths with
    queries, spaces, unicode, broken brackets — by splitting at the first ``#`` and ``?``
    by hand rather than with ``urllib.parse.urlsplit``, which raises on some inputs
    (``http://[::1``), silently deletes tabs and newlines, re-assembles some URLs
    differently (``urlunsplit``) and only finds userinfo after a well-formed scheme (see
    ``_strip_userinfo``). Non-strings are returned unchanged: they hold no URL.
    """

    allow_params: frozenset[str] = frozenset()
    keep_fragment: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.allow_params, frozenset) or not all(
            isinstance(name, str) for name in self.allow_params
        ):
            raise TypeError("allow_params must be a frozenset of parameter names")

    def apply(self, value: JsonScalar) -> JsonScalar:
        """The generalized URL for strings; everything else unchanged."""
        if isinstance(value, str):
            return self.generalize_text(value)
        return value

    def generalize_text(self, url: str) -> str:
        """``url`` without userinfo, non-allowlisted parameters and (maybe) fragment."""
        fragment = ""
        hash_at = url.find("#")
        if hash_at >= 0:
            if self.keep_fragment:
                fragment = url[hash_at:]
            url = url[:hash_at]
        q_at = url.find("?")
        base = url if q_at < 0 else url[:q_at]
        if "@" in base:
            base = _strip_userinfo(base)
        elif q_at >= 0 and self.allow_params and self._keeps_every_param(url, q_at + 1):
            return url + fragment  # the usual analytics URL: nothing to drop
        if q_at >= 0 and self.allow_params:
            kept = self._kept_params(url, q_at + 1)
            if kept:
                return base + "?" + kept + fragment
        return base + fragment

    def _keeps_every_param(self, url: str, start: int) -> bool:
        """Whether every parameter of the query that starts at ``start`` is allowlisted
        (an empty query keeps none)."""
        end = len(url)
        if start == end:
            return False
        while start <= end:
            amp = url.find("&", start)
            if amp < 0:
                amp = end
            if not self._allowed(url, start, amp):
                return False
            start = amp + 1
        return True

    def _kept_params(self, url: str, start: int) -> str:
        """The allowlisted parameters of the query that starts at ``start``, in order,
        joined with ``&``."""
        end = len(url)
        kept: list[str] = []
        while start <= end:
            amp = url.find("&", start)
            if amp < 0:
                amp = end
            if self._allowed(url, start, amp):
                kept.append(url[start:amp])
            start = amp + 1
        return "&".join(kept)

    def _allowed(self, url: str, start: int, end: int) -> bool:
        """Whether the parameter ``url[start:end]`` has an allowlisted name, as written
        or percent-decoded."""
        equals = url.find("=", start, end)
        name = url[start : end if equals < 0 else equals]
        allow = self.allow_params
        return name in allow or (("%" in name or "+" in name) and unquote_plus(name) in allow)


# --------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------

Bucket = Literal["minute", "hour", "day", "week", "month"]
_BUCKETS: tuple[str, ...] = ("minute", "hour", "day", "week", "month")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_DAY = 86400
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_MIN_SECONDS = (dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY
_MAX_SECONDS = (dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL) * _DAY
_UNIT_FLOOR = 94_694_400
"""1973-01-01T00:00:00Z in seconds: a Monday and a month start, so a bucket boundary for
every bucket. Epoch numbers are read as seconds below 1000 times it, milliseconds below
10**6 times it, microseconds below 10**9 times it, nanoseconds above. Flooring never moves
a value across these limits, which keeps the unit guess (and so the action) idempotent."""
_UNIT_SCALES = (1, 1000, 1_000_000, 1_000_000_000)

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:([Tt ])(\d{2}):(\d{2})(?::(\d{2})(?:([.,])(\d{1,12}))?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)
_DECIMAL = re.compile(r"(-?)(\d{1,21})(?:\.(\d{1,12}))?", re.ASCII)


def _unit_scale(magnitude: int | float) -> int:
    """Units per second (1, 10**3, 10**6, 10**9) of an epoch number of this magnitude."""
    for scale in _UNIT_SCALES[:-1]:
        if magnitude < _UNIT_FLOOR * scale * 1000:
            return scale
    return _UNIT_SCALES[-1]


def _floor_date(date: dt.date, bucket: str) -> dt.date:
    if bucket == "week":
        return date - dt.timedelta(days=date.weekday())
    if bucket == "month":
        return date.replace(day=1)
    return date


def _floor_epoch_seconds(seconds: int, bucket: str) -> int | None:
    """Floor epoch seconds (UTC) to the bucket; ``None`` outside years 1..9999."""
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        return None
    if bucket in _SECONDS:
        step = _SECONDS[bucket]
        return seconds - seconds % step
    days = seconds // _DAY
    date = dt.date.fromordinal(days + _EPOCH_ORDINAL)
    return (_floor_date(date, bucket).toordinal() - _EPOCH_ORDINAL) * _DAY


def _valid_offset(tz: str) -> bool:
    if tz in ("Z", "z"):
        return True
    digits = tz[1:].replace(":", "")
    return int(digits[:2]) <= 23 and (len(digits) == 2 or int(digits[2:]) <= 59)


@dataclass(frozen=True, slots=True)
class GeneralizeTimestamp:
    """Floor a timestamp to the start of its ``bucket``, keeping the input's form.

    * ISO-8601 strings (``2024-01-15T10:31:07.123+05:30``, ``...Z``, ``T`` or space,
      ``,``/``.`` fractions, with or without seconds, date-only) are floored in their own
      UTC offset and written back in the same shape: same separator, same offset text,
      zeroed fraction of the same width. Weeks start on Monday (ISO 8601). A date-only
      value is already at day precision.
    * Epoch numbers (``int``/``float``) and numeric strings are floored in UTC and keep
      their type and unit. The unit is guessed from the magnitude (seconds, ms, µs, ns:
      OTLP sends nanoseconds as strings); see ``_UNIT_FLOOR``.
    * ``None`` and bools are returned unchanged: they hold no time.
    * Everything else — unparseable strings, impossible dates, NaN, years outside 1..9999 —
      becomes ``fallback`` (default ``None``). Failing closed is what a privacy reviewer
      expects: a timestamp in a format we do not know must not pass at full precision.
    """

    bucket: Bucket
    fallback: JsonScalar = None

    def __post_init__(self) -> None:
        if self.bucket not in _BUCKETS:
            raise ValueError(f"timestamp bucket must be one of {list(_BUCKETS)}")

    def apply(self, value: JsonScalar) -> JsonScalar:
        """The floored timestamp, or ``fallback`` if ``value`` is not one."""
        if value is None or isinstance(value, bool):
            return value
        out: str | int | float | None
        if isinstance(value, str):
            out = self._floor_text(value)
        elif isinstance(value, int):
            out = self._floor_int(value)
        else:
            out = self._floor_float(value)
        return self.fallback if out is None else out

    def _floor_int(self, value: int) -> int | None:
        scale = _unit_scale(abs(value))
        seconds = _floor_epoch_seconds(value // scale, self.bucket)
        return None if seconds is None else seconds * scale

    def _floor_float(self, value: float) -> float | None:
        if not math.isfinite(value):
            return None
        scale = _unit_scale(abs(value))
        seconds = _floor_epoch_seconds(math.floor(value / scale), self.bucket)
        return None if seconds is None else float(seconds * scale)

    def _floor_text(self, text: str) -> str | None:
        match = _DECIMAL.fullmatch(text)
        if match is not None:
            return self._floor_numeric_text(*match.groups())
        match = _ISO.fullmatch(text)
        if match is None:
            return None
        try:
            return self._floor_iso(match)
        except ValueError:  # impossible date or time, e.g. 2023-02-30
            return None

    def _floor_numeric_text(self, sign: str, whole: str, frac: str | None) -> str | None:
        value = int(whole)
        if sign:
            # Flooring -12.5 must give -13, not -12.
            value = -value - (1 if frac and frac.strip("0") else 0)
        floored = self._floor_int(value)
        if floored is None:
            return None
        return str(floored) if frac is None else f"{floored}.{'0' * len(frac)}"

    def _floor_iso(self, m: re.Match[str]) -> str | None:
        year, month, day, sep, hour, minute, second, frac_sep, frac, tz = m.groups()
        date = _floor_date(dt.date(int(year), int(month), int(day)), self.bucket)
        out = date.isoformat()
        if sep is None:
            return out
        h, mi = int(hour), int(minute)
        if h > 23 or mi > 59 or (second is not None and int(second) > 60):
            return None
        if tz is not None and not _valid_offset(tz):
            return None
        if self.bucket != "minute":
            mi = 0
        if self.bucket not in ("minute", "hour"):
            h = 0
        out += f"{sep}{h:02d}:{mi:02d}"
        if second is not None:
            out += ":00"
            if frac is not None:
                out += frac_sep + "0" * len(frac)
        return out + (tz or "")


# --------------------------------------------------------------------------------------
# User agents
# --------------------------------------------------------------------------------------

_UA_MAX_CHARS = 1024
"""Only this much of a user agent is looked at (and cached): real ones are far shorter."""


@dataclass(frozen=True, slots=True)
class GeneralizeUserAgent:
    """Reduce a user agent to ``"<Family> <major> / <OS>"``.

    ``"Chrome 120 / Windows"``, ``"Mobile Safari 17 / iOS"``, ``"curl 8"``,
    ``"analytics-python 2"``, ``"Googlebot 2"``. Parts that cannot be found are left out;
    an unrecognized agent becomes ``"Other"``, an unnamed crawler ``"Bot"``. Only families
    from a built-in list (browsers, bots, common HTTP clients and telemetry SDKs) plus
    ``extra_products`` (product tokens such as the vendor's own SDK, matched
    case-insensitively and written as configured) are ever output: a custom agent such as
    ``AcmeCorp-Uploader/3.2`` would name the organization, so it becomes ``"Other"``.

    Results are memoized per instance in an LRU of ``cache_size`` entries, because agents
    repeat heavily. Non-strings become ``"Other"``, except ``None`` which stays ``None``.
    """

    extra_products: frozenset[str] = frozenset()
    cache_size: int = 4096
    _cached: Callable[[str], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_range("user agent cache_size", self.cache_size, 0, 1 << 20)
        if not isinstance(self.extra_products, frozenset):
            raise TypeError("extra_products must be a frozenset of product names")
        # The cache belongs to the instance (not the module), so it lives and dies with the
        # plan; lru_cache is thread-safe for concurrent readers.
        classifier = UserAgentClassifier(self.extra_products)
        object.__setattr__(self, "_cached", lru_cache(maxsize=self.cache_size)(classifier))

    def apply(self, value: JsonScalar) -> JsonScalar:
        """The generalized agent; ``None`` unchanged; other non-strings ``"Other"``."""
        if isinstance(value, str):
            return self.generalize_text(value)
        if value is None:
            return None
        return "Other"

    def generalize_text(self, ua: str) -> str:
        """The generalized form of ``ua`` (first 1024 characters)."""
        return self._cached(ua[:_UA_MAX_CHARS])


__all__ = [
    "Bucket",
    "GeneralizeIp",
    "GeneralizeTimestamp",
    "GeneralizeUrl",
    "GeneralizeUserAgent",
]
