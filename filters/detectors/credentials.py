"""Credentials: JWTs, HTTP authorization values, cloud and SaaS API keys, and generic
``password=...`` style assignments."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Final

import orjson

from filters.detectors import replacements
from filters.detectors.base import Detector, Span, Validator
from filters.detectors.context import (
    ANY,
    WHITESPACE,
    WHITESPACE_BYTES,
    continues_before,
    framed,
    literal,
)

_BASE64URL: Final = rb"A-Za-z0-9_-"

# --- JWT --------------------------------------------------------------------------------

# A JWT header is a JSON object, so its base64url starts with "ey" ('{"') or "ew" ('{\n').
_JWT_PATTERN: Final = framed(
    rb"e[wy][" + _BASE64URL + rb"]{8,}\.[" + _BASE64URL + rb"]{2,}\.[" + _BASE64URL + rb"]*",
    trail=rb"[^" + _BASE64URL + rb"]",
)


def _decode_base64url(segment: bytes) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def _validate_jwt(buffer: bytes, start: int, end: int) -> list[Span]:
    header = _decode_base64url(buffer[start : buffer.find(b".", start, end)])
    if header is None:
        return []
    try:
        fields = orjson.loads(header)
    except orjson.JSONDecodeError:
        return []
    return [(start, end)] if isinstance(fields, dict) and "alg" in fields else []


def jwt() -> Detector:
    """JSON Web Tokens (three base64url segments whose header is JSON with ``alg``),
    replaced whole: header, payload and signature."""
    return Detector(
        name="jwt",
        patterns=(_JWT_PATTERN,),
        validate=_validate_jwt,
        replacement=replacements.JWT,
        description="JSON Web Tokens",
    )


# --- Authorization: Bearer / Basic ------------------------------------------------------

_CREDENTIAL_CHARS: Final = rb"a-z0-9._~+/=-"
_BEARER_PATTERN: Final = framed(
    rb"(?:bearer|basic)[ \t]+[" + _CREDENTIAL_CHARS + rb"]{8,}",
    trail=rb"[^" + _CREDENTIAL_CHARS + rb"]",
)
_SYMBOLS: Final = frozenset(b"0123456789._~+/=-")


def _looks_like_token(value: bytes) -> bool:
    """Opaque tokens mix character kinds; prose after the word "bearer" does not."""
    return bool(_SYMBOLS.intersection(value)) or (value.lower() != value != value.upper())


def _is_basic_credential(value: bytes) -> bool:
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _validate_bearer(buffer: bytes, start: int, end: int) -> list[Span]:
    if continues_before(buffer, start):
        return []
    is_basic = buffer[start : start + 5].lower() == b"basic"
    value_start = start + (5 if is_basic else 6)
    while buffer[value_start] in b" \t":
        value_start += 1
    while buffer[end - 1] == 0x2E:  # a trailing "." ends the sentence
        end -= 1
    value = buffer[value_start:end]
    valid = _is_basic_credential(value) if is_basic else _looks_like_token(value)
    return [(value_start, end)] if valid and len(value) >= 8 else []


def bearer() -> Detector:
    """``Bearer <token>`` and ``Basic <base64 user:password>`` credentials in text (an
    ``Authorization`` header logged or pasted); the credential is replaced, the scheme
    word stays."""
    return Detector(
        name="bearer",
        patterns=(_BEARER_PATTERN,),
        validate=_validate_bearer,
        replacement=replacements.CREDENTIAL,
        caseless=True,
        description="HTTP Bearer and Basic credentials",
    )


# --- prefixed API keys ------------------------------------------------------------------


def _token_validator(*, strip_trailing: bytes = b"") -> Validator:
    """A validator for prefixed keys: the key must start a word (``xghp_...`` is some
    other token); ``strip_trailing`` bytes at the end belong to the sentence."""

    def validate(buffer: bytes, start: int, end: int) -> list[Span]:
        if continues_before(buffer, start):
            return []
        while buffer[end - 1] in strip_trailing:
            end -= 1
        return [(start, end)]

    return validate


def _prefixed_token(prefix: bytes, body: bytes, minimum: int) -> bytes:
    """``prefix`` then at least ``minimum`` characters of ``body``; the trail is any
    byte outside ``body`` so that the whole key is one candidate."""
    # "{n}x*" rather than "{n,}": hyperscan rejects large bounded repeats with SOM.
    return framed(
        prefix + rb"[" + body + rb"]{" + str(minimum).encode() + rb"}[" + body + rb"]*",
        trail=rb"[^" + body + rb"]",
    )


def _key_detector(
    name: str, patterns: tuple[bytes, ...], validate: Validator, description: str
) -> Detector:
    return Detector(
        name=name,
        patterns=patterns,
        validate=validate,
        replacement=replacements.CREDENTIAL,
        description=description,
    )


_AWS_KEY_PREFIXES: Final = (
    rb"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA|A3T[A-Z0-9])"
)


def aws_access_key() -> Detector:
    """AWS access key ids (``AKIA``/``ASIA``/``AROA``... followed by 16 characters)."""
    pattern = framed(_AWS_KEY_PREFIXES + rb"[A-Z0-9]{16}", trail=rb"[^A-Za-z0-9]")
    return _key_detector("aws_access_key", (pattern,), _token_validator(), "AWS access key ids")


def github_token() -> Detector:
    """GitHub tokens: ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` and ``github_pat_``."""
    patterns = (
        _prefixed_token(rb"gh[pousr]_", rb"A-Za-z0-9", 36),
        _prefixed_token(rb"github_pat_", rb"A-Za-z0-9_", 22),
    )
    return _key_detector("github_token", patterns, _token_validator(), "GitHub tokens")


def gitlab_token() -> Detector:
    """GitLab tokens: personal (``glpat-``), deploy, runner, CI job, trigger, feed,
    incoming mail, agent, SCIM, OAuth application secrets, and runner registration
    tokens (``GR1348941``)."""
    patterns = (
        _prefixed_token(
            rb"gl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|soat|oas|ffct|wt)-", rb"A-Za-z0-9_.-", 20
        ),
        _prefixed_token(rb"GR1348941", rb"A-Za-z0-9_-", 20),
    )
    validate = _token_validator(strip_trailing=b".")
    return _key_detector("gitlab_token", patterns, validate, "GitLab tokens")


def _validate_slack(buffer: bytes, start: int, end: int) -> list[Span]:
    if not buffer.startswith(b"hooks.", start):
        return [] if continues_before(buffer, start) else [(start, end)]
    # A webhook: keep "hooks.slack.com/services/", replace the ids and secret after it.
    kind = buffer.find(b"/", start, end) + 1
    path = buffer.find(b"/", kind, end) + 1
    while buffer[end - 1] == 0x2F:  # "/"
        end -= 1
    return [(path, end)] if path < end else []


def slack_token() -> Detector:
    """Slack tokens (``xoxb-``, ``xoxp-``, ``xoxa-``, ``xoxr-``, ``xoxs-``, ``xapp-``)
    and the secret path of ``hooks.slack.com`` webhooks."""
    patterns = (
        _prefixed_token(rb"xox[abposre]-", rb"A-Za-z0-9-", 10),
        _prefixed_token(rb"xapp-[0-9]-", rb"A-Za-z0-9-", 10),
        _prefixed_token(
            rb"hooks\.slack\.com/(?:services|workflows|triggers)/", rb"A-Za-z0-9_/-", 10
        ),
    )
    return _key_detector("slack_token", patterns, _validate_slack, "Slack tokens and webhooks")


def stripe_key() -> Detector:
    """Stripe keys: secret, restricted and publishable (``sk_``/``rk_``/``pk_`` live or
    test) and webhook signing secrets (``whsec_``)."""
    patterns = (
        _prefixed_token(rb"(?:sk|rk|pk)_(?:live|test)_", rb"A-Za-z0-9", 10),
        _prefixed_token(rb"whsec_", rb"A-Za-z0-9", 20),
    )
    return _key_detector("stripe_key", patterns, _token_validator(), "Stripe API keys")


# --- values assigned to secret-sounding names -------------------------------------------

# Optional quotes are written ``\\*["']?`` (which also lets lone backslashes through)
# rather than ``(?:\\?["'])?`` or ``\\{0,3}["']?``: with start-of-match tracking those
# made hyperscan 12-15x slower on a whole batch.
_QUOTE: Final = rb"\\*[\"']?"  # any backslashes: JSON quoted inside JSON inside JSON
_ASSIGNMENT: Final = _QUOTE + rb"[ \t]*(?:[:=]|=>)[ \t]*"
"""Between a name and its value: an optional closing quote (escaped inside JSON), then
``:``, ``=`` or ``=>`` with optional spaces."""


_NOT_SECRETS: Final = frozenset({b"null", b"true", b"false", b"none", b"undefined", b"nil"})
_OPERATOR_SKIP: Final = frozenset(b" \t:=>")
_AFTER_OPERATOR: Final = frozenset(b" \t:=>\"'\\t")
"""Bytes that can end an assignment before its value."""
_NAME_REACH: Final = 64
"""How far an assignment's name and operator are looked for around a candidate."""
_TABS: Final = b"t\t"
"""After backslashes, what stands for a tab: the ``t`` of ``\\t``, or a tab after a
literal backslash (whose JSON is a backslash run before ``t`` as well)."""
_BACKSLASH: Final = 0x5C
_DOUBLE_QUOTE: Final = 0x22
_NAME_STOP: Final = frozenset(b"\"'=:") | WHITESPACE_BYTES
_QUOTED_VALUE_LIMIT: Final = 1024


def _backslashes_before(buffer: bytes, index: int) -> int:
    run = 0
    while buffer[index - run - 1] == 0x5C:
        run += 1
    return run


def _escaping_depth(level: int) -> int:
    """How many times a ``"`` behind ``level`` backslashes was JSON-encoded along with
    its text: ``"`` 0, ``\\"`` 1, ``\\\\\\"`` 2 (an even run is escaped backslashes
    before a quote that is not escaped)."""
    depth = 0
    while level & 1:
        level >>= 1
        depth += 1
    return depth


def _line_end(buffer: bytes, start: int, limit: int, quote: int, depth: int) -> int:
    """Where the line that a quoted value opened on ends (an unterminated quote ends with
    its line), searching ``[start, limit)``: at a newline, or at a run of backslashes
    before ``n`` that encodes a newline of the text the quote belongs to.

    Decoding ``depth`` times, a run of ``r`` backslashes before ``n`` turns into a newline
    unless ``r`` is a multiple of ``2**depth`` (then it is literal backslashes and an
    ``n`` in the quote's text). TEXT and JSON mode agree under this rule (the JSON of a
    text doubles each run, writes ``\\n`` for a newline and adds one to the depth), and
    a JSON string (a ``"`` at depth 0) runs to its end whatever it holds. JSON never
    escapes ``'``, so any backslash-n ends the line of a ``'``-quoted value."""
    if (newline := buffer.find(b"\n", start, limit)) >= 0:
        limit = newline
    if quote == _DOUBLE_QUOTE and not depth:
        return limit
    unit = (1 << depth) - 1
    position = start
    while (position := buffer.find(b"\\n", position, limit)) >= 0:
        run_start = position
        while run_start > start and buffer[run_start - 1] == _BACKSLASH:
            run_start -= 1
        if quote != _DOUBLE_QUOTE or (position + 1 - run_start) & unit:
            return run_start
        position += 2
    return limit


def _closing_quote(buffer: bytes, opening: int, start: int) -> int:
    """Where a quoted value that opened at ``opening`` ends, searching from ``start``,
    or -1 when its quote is not closed on its line and in its string.

    A ``"`` value quoted inside JSON (inside JSON ...) ends at the first quote of its own
    level; a quote escaped once more is part of the value, one escaped less ends the
    string that holds the value (unclosed). The backslashes before the closing quote are
    not part of the value. JSON never escapes ``'``: a ``'`` value ends at the first
    ``'`` behind as many backslashes as the opening one."""
    quote = buffer[opening]
    level = _backslashes_before(buffer, opening)
    depth = _escaping_depth(level)
    limit = _line_end(buffer, start, min(len(buffer), start + _QUOTED_VALUE_LIMIT), quote, depth)
    quote_byte = buffer[opening : opening + 1]
    position = start
    while (position := buffer.find(quote_byte, position, limit)) >= 0:
        run = _backslashes_before(buffer, position)
        if quote != _DOUBLE_QUOTE:
            if run == level:
                return position - run
        else:
            for _ in range(depth):
                if not run & 1:
                    return -1  # not escaped at an outer level: the string ended
                run >>= 1
            if not run & 1:
                return position - (1 << depth) + 1
        position += 1
    return -1


def _value_start(buffer: bytes, operator_end: int) -> tuple[int, bool]:
    """Where the value after an assignment operator starts and whether it is quoted, or
    ``(-1, False)`` when it starts with an escape (in text, a backslash ends a value).
    A tab before the value may be written ``\\t`` (in JSON, or in a logged line)."""
    index = operator_end
    while True:
        if buffer[index] in _OPERATOR_SKIP:
            index += 1
            continue
        quote = index
        while buffer[quote] == _BACKSLASH:
            quote += 1
        if quote == index or buffer[quote] not in _TABS:
            break
        index = quote + 1
    if buffer[quote] in b"\"'":
        return quote + 1, True
    return (-1, False) if quote > index else (index, False)


def _secret_value(buffer: bytes, operator_end: int) -> Span | None:
    """The value after an assignment operator (a quoted value up to its closing quote),
    unless it is empty, a JSON literal, a mask (``***``) or already a replacement.

    An unquoted value (or a quoted one whose quote is not closed on its line) ends at
    whitespace, punctuation, a control character or a backslash, so that in JSON it
    stops at an escape (``\\n``, ``\\"``, ``\\u0001``) where in text it stops at the
    character the escape stands for, and both read the same value."""
    value_start, quoted = _value_start(buffer, operator_end)
    if value_start < 0:
        return None
    value_end = _closing_quote(buffer, value_start - 1, value_start) if quoted else -1
    if value_end < 0:
        run = _UNQUOTED_VALUE.match(buffer, value_start)  # zero or more bytes: always matches
        value_end = run.end() if run else value_start
    value = buffer[value_start:value_end]
    if not value.strip(b"*") or value.lower() in _NOT_SECRETS:
        return None
    if replacements.holds_replacement(value):
        return None
    return (value_start, value_end)


class _SecretAssignmentValidator:
    """Reads the name and operator of a candidate again (``name`` is the names' pattern
    text) and then the value after them.

    A value that starts with an escape (``\\n``: an empty value before a line break) is
    no value; the candidate may then hold another assignment
    (``password=\\npassword: hunter2``), which hyperscan reported with the same
    start-of-match and so did not report on its own. A name that is the value of an
    assignment (``password=token\\t=x``) is not a name: in text the run of candidates
    skips it, in JSON it may come from another of the detector's patterns."""

    __slots__ = ("_after_assignment", "_assignment")

    def __init__(self, name: bytes) -> None:
        assignment = name + rb"\\*[\"']?(?:[ \t]|\\+[t\t])*(?:[:=]|=>)"
        self._assignment = re.compile(assignment, re.IGNORECASE)
        self._after_assignment = re.compile(
            assignment + rb"(?:[ \t:=>]|\\+[t\t])*\\*[\"']?\Z", re.IGNORECASE
        )

    def __call__(self, buffer: bytes, start: int, end: int) -> list[Span]:
        if buffer[start - 1] in _AFTER_OPERATOR and self._after_assignment.search(
            buffer, max(0, start - _NAME_REACH), start
        ):
            return []
        assignment = self._assignment.match(buffer, start)
        while assignment is not None:
            operator_end = assignment.end()
            if _value_start(buffer, operator_end)[0] >= 0:
                span = _secret_value(buffer, operator_end)
                return [span] if span is not None else []
            # The next assignment starts inside this candidate; its operator may follow it.
            assignment = self._assignment.search(buffer, operator_end, end + _NAME_REACH)
            if assignment is not None and assignment.start() >= end:
                return []
        return []


AWS_SECRET_NAMES: Final = (
    rb"(?:aws[_-]?secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key|secret[_-]?access[_-]?key)"
)


def aws_secret_key() -> Detector:
    """AWS secret access keys (40 characters), only where the context names them:
    ``aws_secret_access_key = ...``, ``"SecretAccessKey": "..."``, ``AWS_SECRET_KEY=``,
    ``<SecretAccessKey>...``. The name stays."""
    pattern = framed(
        AWS_SECRET_NAMES + rb"(?:" + _ASSIGNMENT + rb"|>)" + _QUOTE + rb"[a-z0-9/+]{40}",
        trail=rb"[^a-z0-9/+=]",
    )

    def validate(buffer: bytes, start: int, end: int) -> list[Span]:
        return [(end - 40, end)]

    return Detector(
        name="aws_secret_key",
        patterns=(pattern,),
        validate=validate,
        replacement=replacements.SECRET,
        caseless=True,
        description="AWS secret access keys (in context)",
    )


DEFAULT_SECRET_NAMES: Final = (
    "password", "passwd", "pwd", "secret", "client_secret", "token", "access_token",
    "refresh_token", "auth_token", "api_key", "apikey", "api-key", "private_key",
    "secret_key",
)  # fmt: skip
_UNQUOTED_VALUE_END: Final = WHITESPACE + rb"\"'&,;<>(){}\[\]\\\x00-\x1f\x7f"
"""What ends an unquoted value: whitespace, punctuation, control characters and the
backslash, so that in JSON a value stops at an escape (``\\n``, ``\\"``, ``\\\\``,
``\\u0001``) exactly where in text it stops at the character the escape stands for."""
_UNQUOTED_VALUE: Final = re.compile(rb"[^" + _UNQUOTED_VALUE_END + rb"]*")


def _without_suffixed(names: Sequence[bytes]) -> list[bytes]:
    """Drop names that end with another listed name (``access_token`` when ``token`` is
    listed): they find the same values, and overlapping names make start-of-match
    tracking expensive."""
    lowered = sorted({name.lower() for name in names}, key=len)
    kept: list[bytes] = []
    for name in lowered:
        if not any(name.endswith(shorter) for shorter in kept):
            kept.append(name)
    return kept


def secret_assignment(names: Sequence[str] = DEFAULT_SECRET_NAMES) -> Detector:
    """Values assigned to secret-sounding names in free text and JSON: ``password=...``,
    ``passwd: ...``, ``"api_key": "..."``, ``token = 'a b'``. The name stays, the value
    is replaced (a quoted value whole, spaces included)."""
    encoded = [name.encode() for name in names]
    if not encoded or any(not name or set(name) & _NAME_STOP for name in encoded):
        raise ValueError("secret names must be non-empty and free of quotes, = and :")
    name = rb"(?:" + b"|".join(literal(n) for n in _without_suffixed(encoded)) + rb")"
    # A quoted value is found by its first word and then extended to its closing quote by
    # the validator. More patterns find what the first cannot: a quoted value that starts
    # with a space or an escape, and a tab written ``\\t`` (in JSON) or after a literal
    # backslash (in text; its JSON is ``\\\\\\t``) around the operator.
    # (Optional groups such as ``(?:\\*["'])?`` or ``(?:[ \t]|\\+t)*`` in the first
    # pattern made hyperscan's start-of-match tracking ~15x slower on a whole batch.)
    stop = rb"[" + _UNQUOTED_VALUE_END + rb"]"
    patterns = (
        framed(name + _ASSIGNMENT + _QUOTE + rb"[^" + _UNQUOTED_VALUE_END + rb"]+", trail=stop),
        framed(name + _ASSIGNMENT + rb"\\*[\"']", trail=stop),
        framed(name + _ASSIGNMENT + rb"\\+\t", trail=ANY),
        framed(name + _QUOTE + rb"[ \t]*\\+[t\t](?:[ \t]|\\+[t\t])*(?:[:=]|=>)", trail=ANY),
    )
    return Detector(
        name="secret_assignment",
        patterns=patterns,
        validate=_SecretAssignmentValidator(name),
        replacement=replacements.SECRET,
        caseless=True,
        description="values of password=, secret:, token=, api_key= ... assignments",
    )
