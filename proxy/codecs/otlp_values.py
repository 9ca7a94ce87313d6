"""OTLP ``AnyValue`` and ``KeyValue`` lists <-> plain Python values the engine can scrub.

In OTLP JSON form (which is also what protobuf's ``MessageToDict`` gives) an attribute
list is ``[{"key": "k", "value": {"stringValue": "v"}}, ...]``. Rules are much easier to
write against ``{"k": "v"}``, so every ``AnyValue`` becomes the Python value it holds:

=======================  =============================================================
AnyValue                 Python value in the document
=======================  =============================================================
``stringValue``          ``str``
``boolValue``            ``bool``
``intValue``             ``int`` (JSON's ``"123"`` string form included)
``doubleValue``          ``float``; NaN and infinities as a tagged string (below)
``arrayValue``           ``list`` of converted values
``kvlistValue``          ``dict`` of converted values
``bytesValue``           tagged string holding the base64 text
``stringValueStrindex``  tagged string holding the index
(no value)               ``None``
=======================  =============================================================

JSON cannot tell bytes from a string, nor carry NaN, so those travel as strings that
start with a NUL character followed by a tag (``"\\x00bytes:aGk="``); a real string that
starts with NUL is escaped with ``"\\x00str:"``. NUL never starts a real attribute value,
so in practice the engine sees every value unchanged, and converting back restores the
exact type. A value a rule rewrote (a hash, a mask) is a plain string and is written back
as ``stringValue``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from filters.outcome import LimitExceeded, PayloadError

CODEC = "otlp"

TAG = "\x00"
BYTES_TAG = "\x00bytes:"
DOUBLE_TAG = "\x00double:"
STRINDEX_TAG = "\x00strindex:"
ESCAPED_STRING_TAG = "\x00str:"

MAX_DEPTH = 64
"""Deepest nesting of array/kvlist values accepted (keeps recursion far from Python's
limit; real attributes nest a few levels at most)."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_NONFINITE = frozenset({"NaN", "Infinity", "-Infinity"})

# ProtoJSON parsers accept the proto field names too; both spellings are read.
_ANY_VALUE_FIELDS: dict[str, str] = {
    "stringValue": "stringValue",
    "string_value": "stringValue",
    "boolValue": "boolValue",
    "bool_value": "boolValue",
    "intValue": "intValue",
    "int_value": "intValue",
    "doubleValue": "doubleValue",
    "double_value": "doubleValue",
    "arrayValue": "arrayValue",
    "array_value": "arrayValue",
    "kvlistValue": "kvlistValue",
    "kvlist_value": "kvlistValue",
    "bytesValue": "bytesValue",
    "bytes_value": "bytesValue",
    "stringValueStrindex": "stringValueStrindex",
    "string_value_strindex": "stringValueStrindex",
}


def attributes_to_dict(attributes: Any, depth: int = 0) -> dict[str, Any]:
    """``[{"key": k, "value": AnyValue}]`` -> ``{k: value}`` (a repeated key keeps the
    last value, as OTLP receivers do). Raises ``PayloadError`` on a malformed list."""
    if not isinstance(attributes, list):
        raise PayloadError(CODEC, "attributes is not a list")
    values: dict[str, Any] = {}
    for entry in attributes:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise PayloadError(CODEC, "attribute without a string key")
        values[entry["key"]] = any_value_to_python(entry.get("value"), depth)
    return values


def dict_to_attributes(values: Any, depth: int = 0) -> list[dict[str, Any]]:
    """The inverse of ``attributes_to_dict``, in the dict's order."""
    if not isinstance(values, dict):
        raise PayloadError(CODEC, "scrubbed attributes are not an object")
    return [
        {"key": key, "value": python_to_any_value(value, depth)} for key, value in values.items()
    ]


def any_value_to_python(any_value: Any, depth: int = 0) -> Any:
    """One ``AnyValue`` (JSON form) -> its Python value (see the module table)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(CODEC, "max_depth", "AnyValue nested too deeply")
    if any_value is None:
        return None
    if not isinstance(any_value, dict) or len(any_value) > 1:
        raise PayloadError(CODEC, "AnyValue is not an object with at most one field")
    if not any_value:
        return None
    ((key, raw),) = any_value.items()
    field = _ANY_VALUE_FIELDS.get(key)
    if field is None:
        raise PayloadError(CODEC, "AnyValue has an unknown field")
    if field == "arrayValue":
        return [any_value_to_python(item, depth + 1) for item in _values_of(raw, field)]
    if field == "kvlistValue":
        return attributes_to_dict(_values_of(raw, field), depth + 1)
    return _READERS[field](raw)


def python_to_any_value(value: Any, depth: int = 0) -> dict[str, Any]:
    """A Python value -> ``AnyValue`` in JSON form (64-bit ints as decimal strings)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(CODEC, "max_depth", "value nested too deeply")
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        _check_int64(value)
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return _string_to_any_value(value)
    if isinstance(value, list):
        values = [python_to_any_value(item, depth + 1) for item in value]
        return {"arrayValue": {"values": values}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": dict_to_attributes(value, depth + 1)}}
    raise PayloadError(CODEC, "value has no AnyValue form")


def _string_to_any_value(value: str) -> dict[str, Any]:
    if not value.startswith(TAG):
        return {"stringValue": value}
    if value.startswith(BYTES_TAG):
        return {"bytesValue": value[len(BYTES_TAG) :]}
    if value.startswith(DOUBLE_TAG) and value[len(DOUBLE_TAG) :] in _NONFINITE:
        return {"doubleValue": value[len(DOUBLE_TAG) :]}
    if value.startswith(STRINDEX_TAG) and _INTEGER_TEXT.fullmatch(value[len(STRINDEX_TAG) :]):
        return {"stringValueStrindex": int(value[len(STRINDEX_TAG) :])}
    if value.startswith(ESCAPED_STRING_TAG):
        return {"stringValue": value[len(ESCAPED_STRING_TAG) :]}
    return {"stringValue": value}


def _read_string(raw: Any) -> str:
    if not isinstance(raw, str):
        raise PayloadError(CODEC, "stringValue is not a string")
    return ESCAPED_STRING_TAG + raw if raw.startswith(TAG) else raw


def _read_bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise PayloadError(CODEC, "boolValue is not a boolean")
    return raw


def _read_int(raw: Any) -> int:
    if isinstance(raw, str) and _INTEGER_TEXT.fullmatch(raw):
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise PayloadError(CODEC, "intValue is not an integer")
    _check_int64(raw)
    return raw


def _read_double(raw: Any) -> float | str:
    if isinstance(raw, str):
        if raw in _NONFINITE:
            return DOUBLE_TAG + raw
        try:
            raw = float(raw)
        except ValueError:
            raise PayloadError(CODEC, "doubleValue is not a number") from None
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise PayloadError(CODEC, "doubleValue is not a number")
    number = float(raw)
    if math.isnan(number):
        return DOUBLE_TAG + "NaN"
    if math.isinf(number):
        return DOUBLE_TAG + ("Infinity" if number > 0 else "-Infinity")
    return number


def _read_bytes(raw: Any) -> str:
    if not isinstance(raw, str):
        raise PayloadError(CODEC, "bytesValue is not base64 text")
    return BYTES_TAG + raw


def _read_strindex(raw: Any) -> str:
    if isinstance(raw, str) and _INTEGER_TEXT.fullmatch(raw):
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise PayloadError(CODEC, "stringValueStrindex is not an integer")
    return f"{STRINDEX_TAG}{raw}"


def _values_of(raw: Any, field: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise PayloadError(CODEC, f"{field} is not an object")
    values = raw.get("values", [])
    if values is None:
        return []
    if not isinstance(values, list):
        raise PayloadError(CODEC, f"{field}.values is not a list")
    return values


def _check_int64(value: int) -> None:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise PayloadError(CODEC, "intValue outside the 64-bit range")


_READERS: dict[str, Callable[[Any], Any]] = {
    "stringValue": _read_string,
    "boolValue": _read_bool,
    "intValue": _read_int,
    "doubleValue": _read_double,
    "bytesValue": _read_bytes,
    "stringValueStrindex": _read_strindex,
}
