"""Value actions: small immutable objects built once from settings, applied per value.

Each has ``apply(value) -> value`` over JSON scalars (see :mod:`filters.actions.base`);
``KeyedHasher`` also offers ``hash_text`` and ``fraction`` (for sampling).
"""

from filters.actions.base import JsonScalar, ValueAction, number_text
from filters.actions.generalize import (
    Bucket,
    GeneralizeIp,
    GeneralizeTimestamp,
    GeneralizeUrl,
    GeneralizeUserAgent,
)
from filters.actions.hashing import MIN_KEY_BYTES, Algorithm, KeyedHasher, parse_hash_key
from filters.actions.mask import Mask
from filters.actions.replace import Replace
from filters.actions.truncate import Truncate

__all__ = [
    "MIN_KEY_BYTES",
    "Algorithm",
    "Bucket",
    "GeneralizeIp",
    "GeneralizeTimestamp",
    "GeneralizeUrl",
    "GeneralizeUserAgent",
    "JsonScalar",
    "KeyedHasher",
    "Mask",
    "Replace",
    "Truncate",
    "ValueAction",
    "number_text",
    "parse_hash_key",
]
