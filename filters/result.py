"""The value a scrub returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from filters.outcome import Outcome


@dataclass(slots=True)
class ScrubResult:
    """A scrubbed document as canonical JSON bytes (what ``orjson.dumps`` writes) plus the
    outcome. ``value`` parses the bytes back only when a codec needs Python objects."""

    json: bytes
    outcome: Outcome
    _value: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def value(self) -> Any:
        if not self._parsed:
            self._value = orjson.loads(self.json)
            self._parsed = True
        return self._value
