"""Admin-written patterns: accepted only when a linear-time engine can run them."""

from __future__ import annotations

import orjson
import pytest

from filters.detectors.base import BufferKind
from filters.detectors.custom import _top_level_alternatives, custom_detector
from filters.detectors.scanner import Scanner, hyperscan_available

BACKENDS = ("hyperscan", "re2") if hyperscan_available() else ("re2",)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("pattern", "ignore_case", "text", "expected"),
    [
        pytest.param(r"ACME-\d{6}", False, "ticket ACME-123456 ok", "ticket [t] ok", id="simple"),
        pytest.param(r"acme-\d+", True, "ACME-1 and acme-22", "[t] and [t]", id="ignore-case"),
        pytest.param(r"acme-\d+", False, "ACME-1", "ACME-1", id="case-sensitive"),
        pytest.param(
            r"\bproj\b", False, "proj project proj", "[t] project [t]", id="word-boundary"
        ),
        pytest.param(r"(?P<id>emp)\d{3}", False, "emp042", "[t]", id="named-group"),
        pytest.param(r"\d+", False, "a 12345 b", "a [t] b", id="digits-whole-run"),
    ],
)
def test_custom_pattern_redacts(backend, pattern, ignore_case, text, expected):
    scanner = Scanner([custom_detector("t", pattern, "[t]", ignore_case)], backend=backend)
    output, counts = scanner.redact(text.encode(), BufferKind.TEXT)
    assert output.decode() == expected
    assert sum(counts.values()) == expected.count("[t]")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        pytest.param(r"(a)\1", "escape", id="backreference"),
        pytest.param(r"(?=secret)\w+", "perl operator", id="lookahead"),
        pytest.param(r"(?<!x)secret", "perl operator", id="lookbehind"),
        pytest.param(r"a++", "repetition operator", id="possessive"),
        pytest.param(r"[a-", "missing ]", id="unterminated-class"),
        pytest.param(r"x*", "empty string", id="matches-empty"),
        pytest.param(r"^secret", "anchors", id="caret"),
        pytest.param(r"secret$", "anchors", id="dollar"),
        pytest.param(r"\Asecret", "anchors", id="backslash-a"),
        pytest.param("sécret", "ASCII", id="non-ascii"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_custom_pattern_rejections_name_the_problem_not_the_pattern(pattern, reason):
    with pytest.raises(ValueError) as error:
        custom_detector("my_rule", pattern, "[x]", False)
    message = str(error.value)
    assert reason in message
    assert "my_rule" in message
    if len(pattern) > 2:
        assert pattern not in message


@pytest.mark.parametrize(
    "pattern", [r"[\^$]", r"a[]^]b", r"price \$\d+", r"[$]5"], ids=["class", "bracket", "esc", "c2"]
)
def test_anchor_characters_inside_classes_or_escaped_are_fine(pattern):
    custom_detector("ok", pattern, "[ok]", False)


def test_empty_name_is_rejected():
    with pytest.raises(ValueError, match="name"):
        custom_detector("", "abc", "[x]", False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_replacement_is_escaped_in_json(backend):
    detector = custom_detector("q", r"secret-\d+", 'quote " and \\ back', False)
    scanner = Scanner([detector], backend=backend)
    output, _ = scanner.redact(orjson.dumps({"a": "x secret-1 y", "n": 5}), BufferKind.JSON)
    assert orjson.loads(output) == {"a": 'x quote " and \\ back y', "n": 5}


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_pattern_never_breaks_json_structure(backend):
    # A greedy admin pattern may match across quotes and structure; the scanner keeps it
    # inside one string (or one bare scalar), so the document stays valid JSON.
    scanner = Scanner([custom_detector("g", r"se.*", "[g]", False)], backend=backend)
    document = {"a": "x secret", "b": ["seven", 7], "c": True}
    output, _ = scanner.redact(orjson.dumps(document), BufferKind.JSON)
    assert orjson.loads(output) == {"a": "x [g]", "b": ["[g]", 7], "c": True}


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_pattern_matching_structure_or_literals(backend):
    scanner = Scanner([custom_detector("s", r"[a-z]+|:|,|\d", "[s]", False)], backend=backend)
    output, _ = scanner.redact(orjson.dumps([1, True, None, "k:v"]), BufferKind.JSON)
    # Numbers and literals become quoted strings, text inside strings is replaced in
    # place, and structure (the commas between items) is left alone.
    assert output == b'["[s]","[s]","[s]","[s][s][s]"]'


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_replacement_is_not_found_again(backend):
    # The default replacement of a custom detector holds its own name.
    scanner = Scanner([custom_detector("user", r"user\w*", "[user]", False)], backend=backend)
    once, _ = scanner.redact(b"user42 and username", BufferKind.TEXT)
    assert once == b"[user] and [user]"
    twice, counts = scanner.redact(once, BufferKind.TEXT)
    assert twice is once
    assert not counts


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_pattern_on_part_of_a_utf8_character(backend):
    # "\xc3" is the first byte of "é": the span grows to the whole character.
    scanner = Scanner([custom_detector("b", r"\xc3", "[b]", False)], backend=backend)
    output, _ = scanner.redact("café".encode(), BufferKind.TEXT)
    assert output.decode() == "caf[b]"
    json_output, _ = scanner.redact(orjson.dumps(["café"]), BufferKind.JSON)
    assert orjson.loads(json_output) == ["caf[b]"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param(r"\bEMP\d{6}\b", "a\nEMP123456", "a\n[t]", id="line-break"),
        pytest.param(r"\bEMP\d{6}\b", "a\x01EMP123456", "a\x01[t]", id="control-character"),
        pytest.param(r"\bEMP\d{6}\b", "a\\nEMP123456", "a\\n[t]", id="literal-backslash-n"),
        pytest.param(r"\bEMP\d{6}\b", "aEMP123456", "aEMP123456", id="glued-to-a-word"),
        pytest.param(r"\b(?:EMP|CTR)-\d+", "a\tCTR-7", "a\t[t]", id="group"),
        pytest.param(r"\bEMP\d+|\bCTR\d+", "a\nEMP1\nCTR2", "a\n[t]\n[t]", id="alternatives"),
        pytest.param(r"EMP\d+", "a\nEMP1", "a\n[t]", id="no-word-boundary"),
        # A hit never takes the letter of an escape (the replacement would cut it).
        pytest.param(r"n\d+", "a\\n12 n34", "a\\n[t] [t]", id="not-the-letter-of-an-escape"),
    ],
)
def test_custom_pattern_after_an_escape(backend, pattern, text, expected):
    scanner = Scanner([custom_detector("t", pattern, "[t]", False)], backend=backend)
    output, _ = scanner.redact(text.encode(), BufferKind.TEXT)
    assert output.decode() == expected
    json_output, _ = scanner.redact(orjson.dumps([text]), BufferKind.JSON)
    assert orjson.loads(json_output) == [expected]


@pytest.mark.parametrize(
    ("pattern", "alternatives"),
    [
        (r"a|b", ["a", "b"]),
        (r"(a|b)|c", ["(a|b)", "c"]),
        (r"[|]x|y", ["[|]x", "y"]),
        (r"[]|]x|y", ["[]|]x", "y"]),
        (r"[^]|]x|y", ["[^]|]x", "y"]),
        (r"\|x|y", [r"\|x", "y"]),
        (r"\bEMP\d+|\bID-\d+", [r"\bEMP\d+", r"\bID-\d+"]),
        (r"plain", ["plain"]),
    ],
)
def test_top_level_alternatives_split_only_outside_groups_classes_and_escapes(
    pattern, alternatives
):
    assert _top_level_alternatives(pattern) == alternatives
