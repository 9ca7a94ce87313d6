"""Escape-aware boundary checks used by validators."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.detectors.context import (
    WHITESPACE,
    byte_table,
    continues_after,
    continues_before,
    dotted_continues_after,
    dotted_continues_before,
    escape_span,
    framed,
    is_escape_tail,
    run_end,
    run_start,
    skip_unicode_escape,
)

_CLASSES = [
    rb"[a-z]",
    rb"[^&#;" + WHITESPACE + rb"\"'<>\\\x00-\x1f\x7f]",
    rb"[\x80-\xff]",
    rb"(?s:.)",
]


@pytest.mark.parametrize("byte_class", _CLASSES)
def test_byte_table_marks_the_bytes_the_class_matches(byte_class):
    table = byte_table(byte_class)
    assert len(table) == 256
    matches = re.compile(byte_class, re.DOTALL).fullmatch
    assert [bool(marked) for marked in table] == [
        matches(bytes((byte,))) is not None for byte in range(256)
    ]


_RUNS = {
    "buffer": st.binary(max_size=40),
    "start": st.integers(0, 40),
    "end": st.integers(0, 40),
    "byte_class": st.sampled_from(_CLASSES),
}
"""A buffer, a range that may reach past its end, and the class of bytes that stop a run."""


@given(**_RUNS)
def test_run_end_stops_where_the_regex_run_stops(buffer, start, end, byte_class):
    end = min(end, len(buffer))
    run = re.compile(rb"(?:(?!" + byte_class + rb").)*", re.DOTALL).match(buffer, start, end)
    expected = run.end() if run is not None else end
    assert run_end(buffer, start, end, byte_table(byte_class)) == max(expected, start)


@given(**_RUNS)
def test_run_start_is_run_end_read_backwards(buffer, start, end, byte_class):
    end = min(end, len(buffer))
    start = min(start, end)
    reversed_start = len(buffer) - end
    expected = len(buffer) - run_end(
        buffer[::-1], reversed_start, len(buffer) - start, byte_table(byte_class)
    )
    assert run_start(buffer, start, end, byte_table(byte_class)) == expected


@pytest.mark.parametrize(
    ("buffer", "index", "span"),
    [
        pytest.param(b"a\\nb", 2, (1, 3), id="letter-of-escape"),
        pytest.param(b"a\\nb", 1, (1, 3), id="backslash-of-escape"),
        pytest.param(b"a\\nb", 3, None, id="after-escape"),
        pytest.param(b"a\\\\nb", 3, None, id="n-after-escaped-backslash"),
        pytest.param(b"a\\\\nb", 2, (1, 3), id="second-backslash-of-pair"),
        pytest.param(b"x\\u001fy", 5, (1, 7), id="hex-digit-of-unicode"),
        pytest.param(b"x\\u001fy", 7, None, id="after-unicode"),
        pytest.param(b"plain", 2, None, id="no-backslash"),
    ],
)
def test_escape_span(buffer, index, span):
    assert escape_span(buffer, index) == span


@pytest.mark.parametrize(
    ("buffer", "index", "tail"),
    [
        pytest.param(b"\\njohn", 1, True, id="letter-of-escape"),
        pytest.param(b"\\njohn", 0, False, id="backslash"),
        pytest.param(b"\\njohn", 2, False, id="after-escape"),
        # In JSON, the literal backslash-n of the text: an escape one level down.
        pytest.param(b"\\\\njohn", 2, True, id="n-after-escaped-backslash"),
        pytest.param(b"\\\\\\\\njohn", 4, True, id="n-after-four-backslashes"),
        pytest.param(b"x\\u00014111", 6, True, id="last-digit-of-unicode"),
        pytest.param(b"x\\u00014111", 7, False, id="after-unicode"),
        pytest.param(b"x\\\\u00014111", 7, True, id="unicode-after-escaped-backslash"),
        pytest.param(b"x\\user4111", 5, False, id="u-without-hex-digits"),
        pytest.param(b"x\\u12", 4, False, id="unicode-cut-short"),
        pytest.param(b"\\", 0, False, id="lone-backslash"),
    ],
)
def test_is_escape_tail(buffer, index, tail):
    assert is_escape_tail(buffer, index) is tail


@pytest.mark.parametrize(
    ("buffer", "start"),
    [(b"\\u0001", 1), (b"x\\u0019", 2)],
)
def test_skip_unicode_escape(buffer, start):
    assert skip_unicode_escape(buffer, start) == start + 5
    assert skip_unicode_escape(b"x4111", 1) == 1


def test_continues_before_ignores_escapes_and_percent_escapes():
    assert continues_before(b"xAKIA", 1)
    assert not continues_before(b"\\nAKIA", 2)
    assert not continues_before(b"%3DAKIA", 3)
    assert not continues_before(b" AKIA", 1)
    assert not continues_before(b"AKIA", 0)


def test_continues_after():
    assert continues_after(b"abc", 1)
    assert not continues_after(b"ab ", 2)
    assert not continues_after(b"ab", 2)


def test_dotted_runs():
    assert dotted_continues_before(b"1.2.3.4", 2)
    assert not dotted_continues_before(b"v.2", 2)
    assert dotted_continues_after(b"1.2.3.4.5", 7)
    assert not dotted_continues_after(b"1.2.3.4.", 7)


def test_framed():
    assert framed(b"ab", trail=b"[^a]") == b"(?s:.)(?:ab)[^a]"
    assert framed(b"ab", trail=b".", lead=b"x") == b"x(?:ab)."


# --- every detector right after an escape ------------------------------------------------

# (detector, sample, what the sample becomes)
ESCAPE_SAMPLES = [
    pytest.param("email", "jane.doe@example.com", "[email]", id="email"),
    pytest.param("phone", "415-555-2671", "[phone]", id="phone-nanp"),
    pytest.param("phone", "020 7946 0958", "[phone]", id="phone-trunk"),
    pytest.param("phone", "+44 20 7946 0958", "[phone]", id="phone-intl"),
    pytest.param("card", "4111111111111111", "[card]", id="card"),
    pytest.param("card", "4222222222222", "[card]", id="card-13"),
    pytest.param("card", "4111 1111 1111 1111", "[card]", id="card-grouped"),
    pytest.param("iban", "DE89370400440532013000", "[iban]", id="iban"),
    pytest.param("ssn", "123-45-6789", "[ssn]", id="ssn"),
    pytest.param("ipv4", "10.1.2.3", "[ip]", id="ipv4"),
    pytest.param("ipv6", "2001:db8::8a2e:370:7334", "[ip]", id="ipv6"),
    pytest.param("mac", "00:1a:2b:3c:4d:5e", "[mac]", id="mac"),
    pytest.param("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "[jwt]", id="jwt"),
    pytest.param("bearer", "Bearer abcdEFGH1234ijkl", "Bearer [credential]", id="bearer"),
    pytest.param("aws_access_key", "AKIAIOSFODNN7EXAMPLE", "[credential]", id="aws"),
    pytest.param("github_token", "ghp_" + "a1" * 18, "[credential]", id="github"),
    pytest.param("gitlab_token", "glpat-" + "b2" * 10, "[credential]", id="gitlab"),
    pytest.param("slack_token", "xoxb-1234567890-abcdef", "[credential]", id="slack"),
    pytest.param("stripe_key", "sk_live_" + "c3" * 12, "[credential]", id="stripe"),
    pytest.param("home_path", "/home/bob/x", "/home/[user]/x", id="home-path"),
    pytest.param("uuid", "123e4567-e89b-12d3-a456-426614174000", "[uuid]", id="uuid"),
]
# Text before the sample: a control character (which canonical JSON writes as an escape
# that may end in a digit: \u0001), and literal escapes (a double-escaped log line).
ESCAPES = [
    pytest.param("\x00", id="nul"),
    pytest.param("\x01", id="u0001"),
    pytest.param("\x19", id="u0019"),
    pytest.param("\x1f", id="u001f"),
    pytest.param("\n", id="newline"),
    pytest.param("\\n", id="literal-n"),
    pytest.param("\\t", id="literal-t"),
    pytest.param("\\u0001", id="literal-u0001"),
    pytest.param("\\u001f", id="literal-u001f"),
    pytest.param("\\\\n", id="literal-double-escaped-n"),
]


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize(("name", "sample", "expected"), ESCAPE_SAMPLES)
def test_every_detector_after_an_escape(redact_text, redact_json, name, sample, expected, escape):
    text = f"x{escape}{sample} end"
    assert redact_text(text, name) == f"x{escape}{expected} end"
    assert redact_json([text], name) == [f"x{escape}{expected} end"]


# Digits and hex next to an escape that are no token: the escape is a boundary, not a
# way around the checks (a Luhn failure, a longer run, letters after, a version).
ESCAPE_NEGATIVES = [
    pytest.param("card", "\\u00014111111111111112", id="card-luhn-fails"),
    pytest.param("card", "\\u000141111111111111111111", id="card-twenty-digit-run"),
    pytest.param("card", "\\u00014111111111111111cd", id="card-before-letters"),
    pytest.param("card", "\\u00014bf92f3577b34da6a3ce929d0e0e4736", id="card-trace-id"),
    pytest.param("card", "u00014111111111111111", id="card-no-backslash"),
    # \u0041 is "A": only 14 digits of the would-be card are left after the escape.
    pytest.param("card", "\\u004111111111111111", id="card-hex-after-u00"),
    pytest.param("card", "\\\\n4111111111111111cd", id="card-literal-n-before-letters"),
    pytest.param("ssn", "\\u0001666-12-3456", id="ssn-area-666"),
    pytest.param("ssn", "\\u00123-45-6789", id="ssn-hex-after-u00"),
    pytest.param("ipv4", "\\u00011.2.3.4.5", id="ipv4-dotted-run"),
    pytest.param("ipv4", "\\u0001127.0.0.1", id="ipv4-loopback"),
    pytest.param("ipv4", "\\u0010.1.2.3", id="ipv4-hex-after-u00"),
    pytest.param("ipv4", "v\\u0001", id="ipv4-escape-alone"),
    pytest.param("phone", "\\u00012024-01-15", id="phone-date"),
    pytest.param("phone", "\\u00010.415.555", id="phone-version"),
    pytest.param("phone", "\\u0041555-2671", id="phone-hex-after-u00"),
    pytest.param("iban", "\\u0001DE89370400440532013001", id="iban-mod97-fails"),
    # Control characters: in JSON these are the \u0001 escapes themselves.
    pytest.param("card", "\x014111111111111112", id="card-after-control-luhn-fails"),
    pytest.param("card", "\x0141111111111111111111", id="card-after-control-twenty-digits"),
    pytest.param("card", "\x01ab4111111111111111", id="card-after-control-hex-id"),
    pytest.param("ipv4", "\x0110.0.19041.1", id="ipv4-after-control-build-number"),
    pytest.param("ssn", "\x012024-01-15", id="ssn-after-control-date"),
]


@pytest.mark.parametrize(("name", "text"), ESCAPE_NEGATIVES)
def test_escapes_keep_the_negatives(redact_text, redact_json, name, text):
    assert redact_text(text, name) == text
    assert redact_json([text], name) == [text]
