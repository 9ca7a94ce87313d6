"""Parsing JSON text inside codecs, failing with ``PayloadError`` instead of orjson's error."""

from __future__ import annotations

from typing import Any

import orjson

from filters.outcome import PayloadError

_BOM = b"\xef\xbb\xbf"


def parse_json(data: bytes | str, codec: str) -> Any:
    """Parse one JSON value (a leading UTF-8 byte-order mark is allowed).

    Raises ``PayloadError(codec, ...)`` naming the position of the error, never the text.
    """
    if isinstance(data, bytes):
        data = data.removeprefix(_BOM)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise PayloadError(codec, f"invalid JSON at position {error.pos}") from None


def looks_like_json_container(text: str) -> bool:
    """True when ``text`` starts with ``{`` or ``[`` (after whitespace) and ends with the
    matching bracket: worth trying to parse as a JSON object or array."""
    stripped = text.strip()
    return len(stripped) >= 2 and (
        (stripped[0] == "{" and stripped[-1] == "}") or (stripped[0] == "[" and stripped[-1] == "]")
    )
