"""Generic identifiers (off unless the admin turns them on)."""

from __future__ import annotations

from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import ALNUM, continues_before, framed

_UUID_PATTERN: Final = framed(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    trail=rb"[^0-9a-z-]",
)
_BEFORE_UUID: Final = ALNUM | frozenset(b"-")


def _validate_uuid(buffer: bytes, start: int, end: int) -> list[Span]:
    return [] if continues_before(buffer, start, _BEFORE_UUID) else [(start, end)]


def uuid() -> Detector:
    """UUIDs in the 8-4-4-4-12 hex form, any case. Off by default: most UUIDs in
    telemetry are event, session or object ids that analytics needs."""
    return Detector(
        name="uuid",
        patterns=(_UUID_PATTERN,),
        validate=_validate_uuid,
        replacement=replacements.UUID,
        default_enabled=False,
        caseless=True,
        description="UUIDs",
    )
