"""What the sink must receive from each proxy under test, checked before any timing.

Failures name the scenario, the batch and the kind of value that leaked, never the value.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from typing import Any

import orjson

from benchmarks.http1 import Message

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\w./-])(?:\d{1,3}\.){3}\d{1,3}(?![\w./-])")
_CARD = re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b")
_PERSONAL_KEYS = {"userId": "id", "anonymousId": "id", "email": "email", "phone": "phone"}


class VerificationFailed(AssertionError):
    """The sink did not receive what the proxy under test must send."""


def check_delivery(
    scenario: str, label: str, document: bytes, sent: bytes, encoding: str | None, got: Message
) -> None:
    """Check the request the sink ``got`` after ``sent`` (``document`` encoded with
    ``encoding``) went through ``scenario``: unchanged bytes for relays, the same JSON for
    the orjson round trip, and for scrub: the same events with no personal value left.
    The Content-Encoding must be preserved in every case."""
    where = f"{scenario}, {label}"
    received = _decoded(where, encoding, got)
    if scenario in ("passthrough", "forward", "direct"):
        if got.body != sent:
            raise VerificationFailed(f"{where}: the sink did not receive the body unchanged")
    elif scenario == "roundtrip":
        if orjson.loads(received) != orjson.loads(document):
            raise VerificationFailed(f"{where}: the sink received a different JSON document")
    else:
        _check_scrubbed(where, document, received)


def _decoded(where: str, encoding: str | None, got: Message) -> bytes:
    received_encoding = got.headers.get("content-encoding") or None
    if received_encoding != encoding:
        raise VerificationFailed(
            f"{where}: Content-Encoding {received_encoding!r} reached the sink, "
            f"expected {encoding!r}"
        )
    if encoding != "gzip":
        return got.body
    if not got.body.startswith(b"\x1f\x8b"):
        raise VerificationFailed(f"{where}: the body is not gzip although labelled so")
    return gzip.decompress(got.body)


def _check_scrubbed(where: str, document: bytes, received: bytes) -> None:
    try:
        scrubbed = orjson.loads(received)
    except orjson.JSONDecodeError:
        raise VerificationFailed(f"{where}: the sink received invalid JSON") from None
    original = orjson.loads(document)
    if _event_identity(scrubbed) != _event_identity(original):
        raise VerificationFailed(
            f"{where}: the batch lost its structure (events, their type or messageId changed)"
        )
    text = received.decode()
    leaked = sorted({kind for kind, value in personal_values(original) if value in text})
    if leaked:
        raise VerificationFailed(f"{where}: personal values reached the sink: {', '.join(leaked)}")


def _event_identity(batch: Any) -> list[tuple[object, object]]:
    events = batch.get("batch") if isinstance(batch, dict) else None
    if not isinstance(events, list):
        return []
    return [(event.get("type"), event.get("messageId")) for event in events]


def personal_values(document: Any) -> Iterator[tuple[str, str]]:
    """(kind, value) for every value of ``document`` the default policy must not let
    through: ids and traits by key name, e-mails, IPv4 host addresses and card numbers
    (Luhn-valid) anywhere in a string."""
    for key, value in _strings(document, ""):
        if key in _PERSONAL_KEYS:
            yield _PERSONAL_KEYS[key], value
        elif key == "ip":
            yield "ip", value
        yield from (("email", found) for found in _EMAIL.findall(value))
        yield from (("ip", found) for found in _IPV4.findall(value) if _is_host_ipv4(found))
        yield from (("card", found) for found in _CARD.findall(value) if _luhn(found))


def _strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for child_key, child in value.items():
            yield from _strings(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child, key)


def _is_host_ipv4(text: str) -> bool:
    """A host address, as the ipv4 detector sees it: not loopback, broadcast or a network
    address ending in .0 (what IP generalization writes)."""
    octets = [int(part) for part in text.split(".")]
    return all(octet <= 255 for octet in octets) and octets[0] != 127 and 0 < octets[3] < 255


def _luhn(text: str) -> bool:
    digits = [int(char) for char in text if char.isdigit()]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * digit, 10)) for digit in digits[-2::-2])
    return total % 10 == 0
