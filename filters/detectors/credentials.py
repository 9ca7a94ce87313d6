"""Credentials: JWTs, HTTP authorization values, cloud and SaaS API keys, and generic
``password=...`` style assignments."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Final

import orjson

from filters.detectors import replacements
from filters.detectors.base import Detector, Span, Validator
from filters.detectors.context import (
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
_VALUE_SKIP: Final = frozenset(b" \t\"'\\:=>")
_NAME_STOP: Final = frozenset(b"\"'=:") | WHITESPACE_BYTES
_QUOTED_VALUE_LIMIT: Final = 1024


def _backslashes_before(buffer: bytes, index: int) -> int:
    run = 0
    while buffer[index - run - 1] == 0x5C:
        run += 1
    return run


def _closing_quote(buffer: bytes, opening: int, end: int) -> int:
    """Where a quoted value that opened at ``opening`` ends: at the first quote of the
    same escaping level (``"``, ``\\"``, ``\\\\\\"`` ... for a value quoted inside
    JSON inside JSON), so that an escaped quote inside the value does not end it. The
    backslashes before the closing quote are not part of the value."""
    quote = buffer[opening : opening + 1]
    level = _backslashes_before(buffer, opening)
    position = end
    limit = min(len(buffer), end + _QUOTED_VALUE_LIMIT)
    if (newline := buffer.find(b"\n", end, limit)) >= 0:
        limit = newline  # an unterminated quote ends with its line
    while (position := buffer.find(quote, position, limit)) >= 0:
        run = _backslashes_before(buffer, position)
        if run % (2 * level + 2) == level:
            return position - level
        if run % 2 == 0:
            return position - run  # an unescaped quote: the enclosing string ended
        position += 1
    return end


def _validate_secret_value(buffer: bytes, start: int, end: int) -> list[Span]:
    """The value after the name (a quoted value up to its closing quote), unless it is
    empty, a JSON literal, a mask (``***``) or already a replacement."""
    colon, equals = buffer.find(b":", start, end), buffer.find(b"=", start, end)
    value_start = min(index for index in (colon, equals) if index >= 0)
    while value_start < end and buffer[value_start] in _VALUE_SKIP:
        value_start += 1
    if buffer[value_start - 1] in b"\"'":
        end = _closing_quote(buffer, value_start - 1, end)
    value = buffer[value_start:end]
    if not value.strip(b"*") or value.lower() in _NOT_SECRETS:
        return []
    if replacements.holds_replacement(value):
        return []
    return [(value_start, end)]


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
_UNQUOTED_VALUE_END: Final = WHITESPACE + rb"\"'&,;<>(){}\[\]"


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
    name += _ASSIGNMENT
    # One pattern: a quoted value is found by its first word and then extended to its
    # closing quote by the validator.
    pattern = framed(
        name + _QUOTE + rb"[^" + _UNQUOTED_VALUE_END + rb"]+",
        trail=rb"[" + _UNQUOTED_VALUE_END + rb"]",
    )
    return Detector(
        name="secret_assignment",
        patterns=(pattern,),
        validate=_validate_secret_value,
        replacement=replacements.SECRET,
        caseless=True,
        description="values of password=, secret:, token=, api_key= ... assignments",
    )
