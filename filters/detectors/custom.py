"""Admin-written detectors: a name, a regular expression and a replacement.

Patterns come from the settings file, so they are checked as strictly as a built-in: they
must compile in a linear-time engine (RE2, and hyperscan where it is available: no
backreferences, no lookaround, no possessive quantifiers), match at least one character,
and stay in ASCII (use ``\\xHH`` escapes for other bytes). They are not anchored: a
document is scanned as one joined buffer, so ``^`` and ``$`` would not mean "start of
value" and are refused. For the same reason ``.``, ``\\S``, ``\\W``, ``\\D`` and negated
classes are compiled so that they never match ``"``: a pattern cannot run from one JSON
value into the next. Error messages name the problem, never the pattern text.

Escapes are boundaries, as for the built-in detectors: a hit that starts on the letter of
an escape (``\\n``, ``\\u0001``) starts after it instead, and a pattern (or top-level
alternative) that starts with ``\\b`` also matches right after one, where ``\\b`` alone
sees two word characters (in JSON a line break is ``\\n``: ``\\bEMP\\d+`` must find
``EMP1`` after it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

import re2

from filters.detectors.base import Detector, Span
from filters.detectors.context import ANY, escape_tail_end, framed

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised on ARM
    hyperscan = None  # type: ignore[assignment]

_HYPERSCAN_POSITION: Final = re.compile(r"\s+at index \d+|'[^']*'")


_AFTER_ESCAPE: Final = rb"(?:u[0-9A-Fa-f]{4}|[0-9A-Za-z_])"
"""The rest of an escape whose last character is a word character (after its backslash,
the pattern's lead): ``\\b`` cannot see a boundary between it and a word."""
_QUANTIFIERS: Final = "*+?{"


def _accept(buffer: bytes, start: int, end: int) -> list[Span]:
    """Custom patterns are exact already: the match is the hit, without the letters of an
    escape it starts with (they stand for another character, such as a line break)."""
    start = escape_tail_end(buffer, start)
    return [(start, end)] if start < end else []


def _outside_classes(pattern: str) -> Iterator[tuple[int, str]]:
    """``(index, token)`` for each token of ``pattern`` outside character classes: an
    escape (``\\d``, two characters) or a single character. Classes are skipped whole."""
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if not in_class:
                yield index, pattern[index : index + 2]
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # "]" right after "[" or "[^" is a literal, not the end of the class.
            index += 2 if pattern[index + 1 : index + 2] == "^" else 1
            if pattern[index : index + 1] == "]":
                index += 1
            continue
        else:
            yield index, char
        index += 1


def _has_anchor(pattern: str) -> bool:
    """True when ``^``, ``$``, ``\\A``, ``\\z`` or ``\\Z`` occurs outside a class."""
    return any(token in _ANCHORS for _, token in _outside_classes(pattern))


_ANCHORS: Final = frozenset({"^", "$", "\\A", "\\z", "\\Z"})


def _top_level_alternatives(pattern: str) -> list[str]:
    """``pattern`` split at every ``|`` outside groups and classes."""
    alternatives: list[str] = []
    depth, first = 0, 0
    for index, token in _outside_classes(pattern):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token == "|" and not depth:
            alternatives.append(pattern[first:index])
            first = index + 1
    alternatives.append(pattern[first:])
    return alternatives


def _expressions(pattern: str) -> tuple[bytes, ...]:
    """The framed expressions of an admin's pattern: the pattern itself and, when some of
    its top-level alternatives start with ``\\b``, the rest of those after an escape."""
    confined = _confined_to_values(pattern)
    expressions = [framed(confined.encode("ascii"), trail=ANY)]
    rests = [
        alternative[2:]
        for alternative in _top_level_alternatives(confined)
        if alternative.startswith("\\b") and alternative[2:3] not in ("", *_QUANTIFIERS)
    ]
    if rests:
        after_escape = _AFTER_ESCAPE + b"(?:" + "|".join(rests).encode("ascii") + b")"
        expressions.append(framed(after_escape, trail=ANY, lead=rb"\\"))
    return tuple(expressions)


_CONFINED_SHORTHANDS: Final = {"S": r'[^\s"]', "W": r'[^\w"]', "D": r'[^\d"]'}


def _confined_to_values(pattern: str) -> str:
    """``pattern`` with every "anything but" construct made to stop at ``"``: ``.``,
    ``\\S``, ``\\W``, ``\\D`` and negated classes. In canonical JSON a quote inside a
    string is always escaped, so the rewritten pattern cannot run from one value into
    the next (``secret.*`` would otherwise swallow the rest of the document and hide
    every later match). In plain text a quote ends such runs too."""
    out: list[str] = []
    index, in_class, negated, body_start = 0, False, False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escape = pattern[index : index + 2]
            out.append(escape if in_class else _CONFINED_SHORTHANDS.get(escape[1:], escape))
            index += 2
            continue
        if in_class:
            if char == "]" and index > body_start:  # "[]" and "[^]" start with a literal "]"
                out.append('"' if negated else "")
                in_class = False
            out.append(char)
        elif char == "[":
            negated = pattern[index + 1 : index + 2] == "^"
            opening = "[^" if negated else "["
            out.append(opening)
            index += len(opening)
            in_class, body_start = True, index
            continue
        else:
            out.append('[^"\\n]' if char == "." else char)
        index += 1
    return "".join(out)


def _re2_problem(pattern: bytes, ignore_case: bool) -> str | None:
    options = re2.Options()
    options.log_errors = False  # RE2 would print the pattern to stderr
    options.encoding = re2.Options.Encoding.LATIN1
    options.case_sensitive = not ignore_case
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as error:
        text = error.args[0] if error.args else b""
        reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        return reason.split(":", 1)[0] or "not accepted by RE2"
    if compiled.fullmatch(b"") is not None:
        return "matches the empty string"
    return None


def _hyperscan_problem(expression: bytes, ignore_case: bool) -> str | None:
    if hyperscan is None:
        return None
    flags = hyperscan.HS_FLAG_SOM_LEFTMOST | (hyperscan.HS_FLAG_CASELESS if ignore_case else 0)
    try:
        hyperscan.Database().compile(expressions=[expression], ids=[0], flags=[flags])
    except hyperscan.error as error:
        return _HYPERSCAN_POSITION.sub("", str(error)).rstrip(". ") or "not accepted"
    return None


def custom_detector(name: str, pattern: str, replacement: str, ignore_case: bool) -> Detector:
    """A detector for an admin's pattern. Raises ``ValueError`` with a short reason when
    the pattern cannot run in linear time or is otherwise unusable."""
    if not name:
        raise ValueError("custom detector: the name must not be empty")
    problem = _pattern_problem(pattern, ignore_case)
    if problem is not None:
        raise ValueError(f"custom detector {name!r}: pattern {problem}")
    return Detector(
        name=name,
        patterns=_expressions(pattern),
        validate=_accept,
        replacement=replacement,
        caseless=ignore_case,
        description="custom pattern",
    )


def _pattern_problem(pattern: str, ignore_case: bool) -> str | None:
    if not pattern:
        return "is empty"
    if not pattern.isascii():
        return "must be ASCII (write other bytes as \\xHH escapes)"
    if _has_anchor(pattern):
        return "must not use anchors (^, $, \\A, \\z): values are scanned in a joined buffer"
    encoded = _confined_to_values(pattern).encode("ascii")
    problem = _re2_problem(encoded, ignore_case)
    if problem is not None:
        return f"is not accepted by RE2: {problem}"
    for expression in _expressions(pattern):
        problem = _hyperscan_problem(expression, ignore_case)
        if problem is not None:
            return f"is not accepted by hyperscan: {problem}"
    return None
