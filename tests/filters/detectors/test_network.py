"""IP and MAC addresses, URL userinfo and sensitive query parameters."""

from __future__ import annotations

import functools
import ipaddress
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.actions.generalize import GeneralizeIp
from filters.detectors.base import BufferKind, Detector
from filters.detectors.context import framed
from filters.detectors.network import IPV6_PATTERNS, ipv6, ipv6_address, sensitive_query_params
from filters.detectors.scanner import Scanner

IPV4_CASES = [
    pytest.param("from 203.0.113.7, retry", "from [ip], retry", id="plain"),
    pytest.param("10.0.0.1:8080", "[ip]:8080", id="with-port"),
    pytest.param("http://192.168.1.10/admin", "http://[ip]/admin", id="in-url"),
    pytest.param("/api/hosts/10.1.2.3/status", "/api/hosts/[ip]/status", id="path-segment"),
    pytest.param("client=198.51.100.23;", "client=[ip];", id="assignment"),
    pytest.param("reached 10.0.0.1.", "reached [ip].", id="sentence-end"),
    pytest.param("8.8.8.8 and 1.1.1.1", "[ip] and [ip]", id="two"),
    pytest.param("10.0.0.1", "[ip]", id="zeros-inside"),
    pytest.param("192.0.2.10 and 192.0.2.100", "[ip] and [ip]", id="last-octet-ends-in-0"),
]

IPV4_NEGATIVES = [
    pytest.param("listen 0.0.0.0:8080", id="unspecified"),
    pytest.param("127.0.0.1 and 127.1.2.3", id="loopback"),
    pytest.param("255.255.255.255", id="broadcast"),
    pytest.param("1.2.3", id="three-part-version"),
    pytest.param("v1.2.3.4 and V10.0.0.1", id="v-version"),
    pytest.param("version 1.2.3.4", id="version-word"),
    pytest.param("Version: 1.2.3.4", id="version-colon"),
    pytest.param("Chrome/120.0.6099.109", id="chrome"),
    pytest.param("Foo/1.2.3.4 (Linux)", id="product-token"),
    pytest.param("10.0.19041.1", id="windows-build"),
    pytest.param("1.2.3.4.5", id="longer-dotted-run"),
    pytest.param("256.1.1.1", id="octet-too-large"),
    pytest.param("01.02.03.04", id="leading-zeros"),
    pytest.param("localhost:3000", id="localhost"),
    pytest.param("[ip]", id="own-replacement"),
    # Network addresses, as ``generalize kind: ip`` writes them for a /24: the final
    # sweep must not turn every generalized address into [ip].
    pytest.param("198.51.100.0", id="network-address"),
    pytest.param("client 10.20.30.0:443", id="network-address-with-port"),
]


@pytest.mark.parametrize(("text", "expected"), IPV4_CASES)
def test_ipv4_text(redact_text, text, expected):
    assert redact_text(text, "ipv4") == expected


@pytest.mark.parametrize(("text", "expected"), IPV4_CASES)
def test_ipv4_json(redact_json, text, expected):
    assert redact_json({"ip": text}, "ipv4") == {"ip": expected}


@pytest.mark.parametrize("text", IPV4_NEGATIVES)
def test_ipv4_negatives(redact_text, redact_json, text):
    assert redact_text(text, "ipv4") == text
    assert redact_json([text], "ipv4") == [text]


def _is_personal_ipv4(text: str) -> bool:
    """The textbook reading of what the ipv4 detector replaces: four octets of at most
    255 written without leading zeros, not unspecified, loopback, broadcast or a network
    address ending in ``.0``."""
    if any(len(octet) > 1 and octet[0] == "0" for octet in text.split(".")):
        return False
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return not (
        address.is_loopback or address == ipaddress.IPv4Address("255.255.255.255")
    ) and not text.endswith(".0")


_OCTET_TEXT = st.one_of(
    st.integers(0, 255).map(str),
    st.sampled_from(["0", "00", "000", "01", "010", "099", "256", "999"]),
)


@settings(max_examples=400)
@given(
    octets=st.lists(_OCTET_TEXT, min_size=4, max_size=4),
    after=st.sampled_from(["", " ", ",", ":80", "/x"]),
)
def test_ipv4_matches_the_textbook_reading(scanners, backend, octets, after):
    # The candidate pattern leaves out last octets no valid address has (a lone "0"):
    # whatever it leaves out, the validator must have rejected.
    text = ".".join(octets)
    expected = ("[ip]" if _is_personal_ipv4(text) else text) + after
    scanner = scanners.get(("ipv4",), backend)
    written, _ = scanner.redact(f"at {text}{after}".encode(), BufferKind.TEXT)
    assert written.decode() == "at " + expected
    swept, _, _ = scanner.redact_json(orjson.dumps([f"at {text}{after}"]))
    assert orjson.loads(swept) == ["at " + expected]


IPV6_CASES = [
    pytest.param("from 2001:db8::8a2e:370:7334 now", "from [ip] now", id="compressed"),
    pytest.param("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[ip]", id="full"),
    pytest.param("2a02:8109:9c40:1a00:c1f3:4d5e:6f70:8192", "[ip]", id="full-slaac"),
    pytest.param("fe80::1%eth0", "[ip]", id="zone-id"),
    pytest.param("::ffff:192.0.2.1", "[ip]", id="v4-mapped"),
    pytest.param("[2001:db8::1]:443", "[[ip]]:443", id="bracketed-with-port"),
    pytest.param("FE80::ABCD:1", "[ip]", id="upper-case"),
    pytest.param("fe80::1:0", "[ip]", id="trailing-zero-group"),
    pytest.param("2001:db8:1234:5678::", "[ip]", id="four-groups-then-double-colon"),
    pytest.param("10.0.0.1 ::ffff:10.0.0.1", "10.0.0.1 [ip]", id="v4-mapped-host"),
    pytest.param("at 2001:db8::1.", "at [ip].", id="sentence-end"),
]

IPV6_NEGATIVES = [
    pytest.param("::", id="unspecified"),
    pytest.param("::1", id="loopback"),
    pytest.param("::ffff:127.0.0.1", id="mapped-loopback"),
    # Network prefixes (what ``generalize kind: ip`` writes for a /48 or shorter).
    pytest.param("2001:db8:1234::", id="prefix-48"),
    pytest.param("from 2001:db8:: on", id="prefix-32"),
    pytest.param("fe80::", id="prefix-one-group"),
    pytest.param("::ffff:192.0.2.0", id="mapped-network-address"),
    pytest.param("12:30:45", id="time"),
    pytest.param("2024-01-15T10:30:00.123Z", id="timestamp"),
    pytest.param("00:1a:2b:3c:4d:5e", id="mac"),
    pytest.param("std::string", id="cpp-std"),
    pytest.param("Foo::bar()", id="cpp-method"),
    pytest.param("Foo::bad()", id="cpp-hex-looking-method"),
    pytest.param("ns::add::dead", id="cpp-nested"),
    pytest.param("dead::beef", id="hex-words"),
    pytest.param("a::b", id="single-letters"),
    pytest.param("error 0x80070005", id="hex-error-code"),
    pytest.param("[ip]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), IPV6_CASES)
def test_ipv6_text(redact_text, text, expected):
    assert redact_text(text, "ipv6") == expected


@pytest.mark.parametrize(("text", "expected"), IPV6_CASES)
def test_ipv6_json(redact_json, text, expected):
    assert redact_json({"ip": text}, "ipv6") == {"ip": expected}


@pytest.mark.parametrize("text", IPV6_NEGATIVES)
def test_ipv6_negatives(redact_text, redact_json, text):
    assert redact_text(text, "ipv6") == text
    assert redact_json([text], "ipv6") == [text]


@settings(max_examples=300)
@given(address=st.ip_addresses())
def test_generalized_addresses_are_not_found_again(scanners, backend, address):
    # The final sweep runs after field rules: an address that ``generalize kind: ip``
    # turned into its network (/24, /48) must stay as written, not become [ip].
    generalized = GeneralizeIp().generalize_text(str(address))
    assert generalized is not None
    scanner = scanners.get(("ipv4", "ipv6"), backend)
    for buffer, kind in (
        (generalized.encode(), BufferKind.TEXT),
        (orjson.dumps({"ip": generalized}), BufferKind.JSON),
    ):
        assert scanner.find(buffer, kind) == []


MAC_CASES = [
    pytest.param("mac 00:1a:2b:3c:4d:5e.", "mac [mac].", id="colon"),
    pytest.param("00-1A-2B-3C-4D-5E", "[mac]", id="dash-upper"),
    pytest.param("001a.2b3c.4d5e", "[mac]", id="cisco"),
    pytest.param("hw=a4:5e:60:e1:2b:7f,", "hw=[mac],", id="assignment"),
]

MAC_NEGATIVES = [
    pytest.param("00:00:00:00:00:00", id="all-zero"),
    pytest.param("ff:ff:ff:ff:ff:ff", id="broadcast"),
    pytest.param("00:1a-2b:3c:4d:5e", id="mixed-separators"),
    pytest.param("fe:80:00:00:00:00:00:01", id="longer-group-run"),
    pytest.param("12:30:45", id="time"),
    pytest.param("123e4567-e89b-12d3-a456-426614174000", id="uuid"),
    pytest.param("[mac]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), MAC_CASES)
def test_mac_text(redact_text, text, expected):
    assert redact_text(text, "mac") == expected


@pytest.mark.parametrize(("text", "expected"), MAC_CASES)
def test_mac_json(redact_json, text, expected):
    assert redact_json({"m": text}, "mac") == {"m": expected}


@pytest.mark.parametrize("text", MAC_NEGATIVES)
def test_mac_negatives(redact_text, redact_json, text):
    assert redact_text(text, "mac") == text
    assert redact_json([text], "mac") == [text]


# The full-form pattern the seed replaced, as the reference for what the detector must
# find: the candidate is the whole address, and what follows it cannot continue one.
_H16 = rb"[0-9a-f]{1,4}"
_FULL_FORM_REFERENCE = framed(
    _H16 + rb"(?::" + _H16 + rb"){5}(?::" + _H16 + rb":" + _H16
    + rb"|:[0-9]{1,3}(?:\.[0-9]{1,3}){3})(?:%[0-9a-z_-]{1,32})?",
    trail=rb"[^0-9a-z:%]",
)  # fmt: skip


def _is_personal_v6(address: ipaddress.IPv6Address) -> bool:
    mapped = address.ipv4_mapped
    if mapped is not None:
        return not (mapped.is_loopback or mapped.is_unspecified or str(mapped).endswith(".0"))
    return not (address.is_unspecified or address.is_loopback)


def _reference_validate(buffer: bytes, start: int, end: int) -> list[tuple[int, int]]:
    if b"::" in buffer[start:end]:  # the compressed pattern's candidates: as before
        return ipv6().validate(buffer, start, end)
    address = ipv6_address(buffer, start, end)
    return [(start, end)] if address is not None and _is_personal_v6(address) else []


_REFERENCE_IPV6 = Detector(
    name="ipv6",
    patterns=(IPV6_PATTERNS[0], _FULL_FORM_REFERENCE),
    validate=_reference_validate,
    replacement="[ip]",
    caseless=True,
)


@functools.cache
def _reference_scanner(backend: str) -> Scanner:
    return Scanner([_REFERENCE_IPV6], backend=backend)  # type: ignore[arg-type]


_GROUP = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=5)
_ADDRESSISH = st.one_of(
    st.ip_addresses(v=6).map(lambda address: address.exploded),
    st.ip_addresses(v=6).map(str),
    st.lists(_GROUP, min_size=5, max_size=10).map(":".join),
    st.tuples(st.lists(_GROUP, min_size=6, max_size=7).map(":".join), st.ip_addresses(v=4)).map(
        lambda parts: f"{parts[0]}:{parts[1]}"
    ),
)
# Escapes in the text (a backslash and a letter), ones JSON writes (a newline, a control
# character) and a percent escape may end right before a group.
_AROUND = st.sampled_from(
    ["", " ", ":", ".", "x", "T", "G", "1", "f", "%eth0", "%", "%3A", "/", "-", "_", "@", "é",
     "\\n", "\\u00e9", "\n", "\x01"]
)  # fmt: skip


@settings(max_examples=600)
@given(
    pieces=st.lists(st.tuples(_AROUND, _ADDRESSISH, _AROUND), min_size=1, max_size=3),
)
def test_ipv6_finds_what_the_full_form_pattern_found(scanners, backend, pieces):
    text = "".join(before + address + after for before, address, after in pieces)
    reference = _reference_scanner(backend)
    scanner = scanners.get(("ipv6",), backend)
    for buffer, kind in ((text.encode(), BufferKind.TEXT), (orjson.dumps(text), BufferKind.JSON)):
        assert scanner.find(buffer, kind) == reference.find(buffer, kind)


USERINFO_CASES = [
    pytest.param(
        "https://user:pa55@example.com/x", "https://[userinfo]@example.com/x", id="user-password"
    ),
    pytest.param(
        "postgres://app:s3cr3t@db.internal:5432/app",
        "postgres://[userinfo]@db.internal:5432/app",
        id="database-url",
    ),
    pytest.param(
        "https://ghp_token@github.com/org/repo",
        "https://[userinfo]@github.com/org/repo",
        id="token",
    ),
    pytest.param("ftp://anonymous@ftp.example.org", "ftp://[userinfo]@ftp.example.org", id="user"),
    pytest.param("amqp://u%40x:p%3Aw@mq:5672", "amqp://[userinfo]@mq:5672", id="percent-encoded"),
]

USERINFO_NEGATIVES = [
    pytest.param("https://example.com/@user/posts", id="at-in-path"),
    pytest.param("git@github.com:org/repo.git", id="scp-like"),
    pytest.param("https://example.com/?a=b@c", id="at-in-query"),
    pytest.param("https://[userinfo]@example.com", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), USERINFO_CASES)
def test_url_userinfo_text(redact_text, text, expected):
    assert redact_text(text, "url_userinfo") == expected


@pytest.mark.parametrize(("text", "expected"), USERINFO_CASES)
def test_url_userinfo_json(redact_json, text, expected):
    assert redact_json({"u": text}, "url_userinfo") == {"u": expected}


@pytest.mark.parametrize("text", USERINFO_NEGATIVES)
def test_url_userinfo_negatives(redact_text, text):
    assert redact_text(text, "url_userinfo") == text


# The pattern the "@"-led detector replaced, as the reference for what it must find:
# the run between a scheme's "://" and the first "@" after it.
_USERINFO_REFERENCE = re.compile(
    rb"(?i)(?<=[a-z0-9+.-]://)[^/?#@\t\n\x0b\x0c\r \"'<>\\]+(?=@[^@/?#\t\n\x0b\x0c\r \"'<>\\])"
)
_URL_PIECE = st.tuples(
    st.sampled_from(["https", "h", "S", "+", "", " ", "@", "/"]),
    st.sampled_from(["://", "://", "://", ":/", "//"]),
    st.lists(
        st.sampled_from(["u", "P", ":", "%40", "!;=", "u:p", "/", "@", " ", "?", "\\\\", "'"]),
        max_size=3,
    ).map("".join),
    st.sampled_from(["@", "@", "@", "@@", ""]),
    st.sampled_from(["h", "example.com", "[::1]", "", "/", "@", " ", "?", '"']),
).map("".join)
_URLISH = st.lists(
    st.one_of(_URL_PIECE, st.sampled_from(["://", "@", " ", "x", "/"])), max_size=4
).map("".join)
"""Near-misses around "scheme://userinfo@host", several per text."""


@given(text=_URLISH)
@settings(max_examples=3000)
def test_url_userinfo_finds_what_the_scheme_led_pattern_found(scanners, backend, text):
    padded = b"\n" + text.encode() + b"\n"
    expected = [
        (match.start() - 1, match.end() - 1) for match in _USERINFO_REFERENCE.finditer(padded)
    ]
    scanner = scanners.get(("url_userinfo",), backend)
    assert [
        (hit.start, hit.end) for hit in scanner.find(text.encode(), BufferKind.TEXT)
    ] == expected


def test_url_userinfo_keeps_host_next_to_email_detector(redact_text):
    # The e-mail detector steps aside for URL userinfo, so the host survives.
    text = "https://john@example.com/x and https://user:pw@example.com"
    expected = "https://[userinfo]@example.com/x and https://[userinfo]@example.com"
    assert redact_text(text, "email", "url_userinfo") == expected


QUERY_CASES = [
    pytest.param("/cb?token=abc123&x=1", "/cb?token=[redacted]&x=1", id="first-param"),
    pytest.param("?a=1&sig=4e42b4d9e7240c4f6f28", "?a=1&sig=[redacted]", id="last-param"),
    pytest.param("?Access_Token=xyz#frag", "?Access_Token=[redacted]#frag", id="case"),
    pytest.param("?a=1;session=s1;b=2", "?a=1;session=[redacted];b=2", id="semicolons"),
    pytest.param("?code=4/0AX4Xf&state=ok", "?code=[redacted]&state=ok", id="oauth-code"),
    pytest.param(
        "?utm_source=mail&email=ivan@example.com", "?utm_source=mail&email=[redacted]", id="email"
    ),
    pytest.param("a?key=1 b?apikey=2", "a?key=[redacted] b?apikey=[redacted]", id="two-urls"),
]

QUERY_ESCAPES = [
    pytest.param("x?token=abc\nmore", "x?token=[redacted]\nmore", id="newline"),
    pytest.param("x?token=abc\tmore", "x?token=[redacted]\tmore", id="tab"),
    pytest.param('x?token=abc"more', 'x?token=[redacted]"more', id="quote"),
    pytest.param("x?token=abc\\more", "x?token=[redacted]\\more", id="backslash"),
    pytest.param("x?token=abc\x01more", "x?token=[redacted]\x01more", id="control"),
]


@pytest.mark.parametrize(("text", "expected"), QUERY_ESCAPES)
def test_query_value_stops_where_text_and_json_agree(redact_text, redact_json, text, expected):
    # In JSON the value stops at the escape (\n, \", \\, \u0001) where text stops at
    # the character it stands for.
    assert redact_text(text, "sensitive_query_params") == expected
    assert redact_json({"url": text}, "sensitive_query_params") == {"url": expected}


QUERY_NEGATIVES = [
    pytest.param("?token=&x=1", id="empty-value"),
    pytest.param("?utm_source=newsletter&uid=375666", id="other-names"),
    pytest.param("?monkey=1&sort_key=2", id="name-inside-other-name"),
    pytest.param("token=abc", id="not-a-query-string"),
    pytest.param("?token=[redacted]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), QUERY_CASES)
def test_query_params_text(redact_text, text, expected):
    assert redact_text(text, "sensitive_query_params") == expected


@pytest.mark.parametrize(("text", "expected"), QUERY_CASES)
def test_query_params_json(redact_json, text, expected):
    assert redact_json({"url": text}, "sensitive_query_params") == {"url": expected}


@pytest.mark.parametrize("text", QUERY_NEGATIVES)
def test_query_params_negatives(redact_text, text):
    assert redact_text(text, "sensitive_query_params") == text


def test_query_param_names_are_configurable():
    scanner = Scanner([sensitive_query_params(("ticket", "x.y"))])
    output, counts = scanner.redact(b"?ticket=T-1&x.y=2&token=3", BufferKind.TEXT)
    assert output == b"?ticket=[redacted]&x.y=[redacted]&token=3"
    assert counts == {"sensitive_query_params": 2}


@pytest.mark.parametrize("names", [(), ("",), ("a=b",), ("a b",)], ids=str)
def test_query_param_names_are_checked(names):
    with pytest.raises(ValueError, match="query parameter names"):
        sensitive_query_params(names)
