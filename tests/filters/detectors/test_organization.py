"""The organization dictionary: names, domains, hosts, CIDRs and base URLs."""

from __future__ import annotations

import dataclasses
import random
import string
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.detectors import organization
from filters.detectors.base import BufferKind
from filters.detectors.organization import organization_detector
from filters.detectors.scanner import Scanner, hyperscan_available

BACKENDS = ("hyperscan", "re2") if hyperscan_available() else ("re2",)


@pytest.fixture(scope="module", params=BACKENDS)
def org_scanner(request):
    detector = organization_detector(
        names=["Acme", "Acme Corp", "Initech", "user"],
        domains=["acme.com", ".acme-internal.net.", "globex.com"],
        hostnames=["jira01", "build.corp.local"],
        cidrs=["10.20.0.0/16", "2001:db8:aaaa::/48", "192.0.2.0/24"],
        base_urls=["https://jira.example.org/"],
    )
    return Scanner([detector], backend=request.param)


def redact(scanner: Scanner, text: str) -> str:
    return scanner.redact(text.encode(), BufferKind.TEXT)[0].decode()


ORG_CASES = [
    pytest.param("Acme Corp and ACME and acme.", "[org] and [org] and [org].", id="names"),
    pytest.param("sent by Initech", "sent by [org]", id="second-name"),
    pytest.param("john@acme.com", "john@[org]", id="email-domain"),
    pytest.param("eu.mail.acme.com:25", "[org]:25", id="subdomain"),
    pytest.param("https://ACME.COM/x", "https://[org]/x", id="domain-case"),
    pytest.param("x.acme-internal.net", "[org]", id="configured-with-dots"),
    pytest.param("jira01.corp and jira01", "[org].corp and [org]", id="hostname"),
    pytest.param("ssh build.corp.local", "ssh [org]", id="fqdn-hostname"),
    pytest.param("from 10.20.3.4 and 10.21.3.4", "from [org] and 10.21.3.4", id="cidr-v4"),
    pytest.param("peer 2001:db8:aaaa::5", "peer [org]", id="cidr-v6"),
    pytest.param("192.0.2.200:443", "[org]:443", id="cidr-v4-port"),
    pytest.param("see https://jira.example.org/browse/X-1", "see [org]/browse/X-1", id="base-url"),
    pytest.param("acme.company", "[org].company", id="name-is-a-word-of-a-host"),
    # After an escape that ends in a digit (a control character, in JSON).
    pytest.param("x\x0110.20.3.4", "x\x01[org]", id="cidr-v4-after-control-character"),
    pytest.param("x\\u000110.20.3.4", "x\\u0001[org]", id="cidr-v4-after-literal-escape"),
    pytest.param("x\\nAcme", "x\\n[org]", id="name-after-literal-backslash-n"),
]

ORG_NEGATIVES = [
    pytest.param("Acmeville and MyAcme", id="name-inside-word"),
    pytest.param("notacme.com", id="domain-as-suffix"),
    pytest.param("globex.company", id="domain-prefix-of-longer"),
    pytest.param("jira01-old", id="hostname-prefix"),
    pytest.param("https://jira.example.org.evil.com", id="base-url-prefix-of-host"),
    pytest.param("v10.20.1.1 and 10.20.1.1.5", id="cidr-version-and-longer-run"),
    pytest.param("2001:db8:bbbb::5", id="cidr-v6-outside"),
    pytest.param("\\u0010.20.3.4", id="cidr-v4-digits-taken-by-escape"),
    pytest.param("[org] [user]", id="replacements"),
]


@pytest.mark.parametrize(("text", "expected"), ORG_CASES)
def test_organization_text(org_scanner, text, expected):
    assert redact(org_scanner, text) == expected


@pytest.mark.parametrize(("text", "expected"), ORG_CASES)
def test_organization_json(org_scanner, text, expected):
    output, _ = org_scanner.redact(orjson.dumps({"v": text}), BufferKind.JSON)
    assert orjson.loads(output) == {"v": expected}


@pytest.mark.parametrize("text", ORG_NEGATIVES)
def test_organization_negatives(org_scanner, text):
    assert redact(org_scanner, text) == text


def test_empty_dictionary_is_no_detector():
    assert organization_detector() is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"names": ["ok", "x"]}, r"names\[1\]", id="too-short"),
        pytest.param({"domains": ["."]}, r"domains\[0\]", id="empty-domain"),
        pytest.param({"cidrs": ["10.0.0.0/8", "secret-host/99"]}, r"cidrs\[1\]", id="bad-cidr"),
    ],
)
def test_bad_entries_are_named_by_index_not_value(arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        organization_detector(**arguments)
    assert "secret-host" not in str(error.value)


def test_five_thousand_entries_compile_quickly_and_match():
    rng = random.Random(7)

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 12)))

    names = [f"{word()} {word()}" if index % 3 == 0 else word() for index in range(5000)]
    domains = [f"{word()}.example" for _ in range(5000)]
    started = time.perf_counter()
    detector = organization_detector(names=names, domains=domains)
    assert detector is not None
    for backend in BACKENDS:
        scanner = Scanner([detector], backend=backend)
        text = f"hello {names[3].upper()}, mail ops@eu.{domains[4999]} now"
        assert redact(scanner, text) == "hello [org], mail ops@[org] now"
    assert time.perf_counter() - started < 10


_OCTET = st.integers(0, 255)
_ADDRESS = st.tuples(_OCTET, _OCTET, _OCTET, _OCTET).map(lambda octets: ".".join(map(str, octets)))
_NETWORK = st.builds(lambda address, prefix: f"{address}/{prefix}", _ADDRESS, st.integers(0, 32))


@st.composite
def _ranges_and_text(draw):
    networks = draw(st.lists(_NETWORK, min_size=1, max_size=4))
    # Addresses near the ranges (same leading octets, other tails) and anywhere, glued to
    # the separators and digits that decide whether a dotted quad stands alone.
    near = [n.split("/")[0].rsplit(".", draw(st.integers(1, 3)))[0] for n in networks]
    pieces = st.one_of(
        _ADDRESS,
        st.builds(lambda head, tail: f"{head}.{tail}", st.sampled_from(near), st.integers(0, 300)),
        st.sampled_from([" ", ".", "1", "v", "x", "\\u0001", ":", "/"]),
    )
    return networks, "".join(draw(st.lists(pieces, max_size=12)))


@settings(max_examples=300, deadline=None)
@given(_ranges_and_text())
def test_range_patterns_find_what_the_generic_pattern_finds(case):
    networks, text = case
    generic = organization._V4_CANDIDATE
    specific = organization_detector(cidrs=networks)
    assert specific is not None
    reference = dataclasses.replace(specific, patterns=(generic,))
    for backend in BACKENDS:
        found = Scanner([specific], backend=backend).redact(text.encode(), BufferKind.TEXT)
        expected = Scanner([reference], backend=backend).redact(text.encode(), BufferKind.TEXT)
        assert found == expected
