"""Keyed hashing of values (the ``hash`` action) and the key parsing it needs.

The default algorithm is HMAC-SHA256 (RFC 2104) under a secret key the admin keeps out of
the settings file: without the key a recipient cannot brute-force a hashed id back from the
small space of plausible ids. The same key yields the same output in every process and on
every replica (there is no per-process salt), so hashed ids still join across events.

``xxh3-128`` is a fast keyed option for non-adversarial use (pseudonymous joins inside a
trusted pipeline). It is NOT cryptographic: xxh3 is not a PRF, so anyone who sees enough
outputs may be able to recover the key or forge collisions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

import xxhash

from filters.actions.base import JsonScalar, check_range, number_text

Algorithm = Literal["hmac-sha256", "xxh3-128"]

MIN_KEY_BYTES = 16
"""Shorter keys are rejected: 128 bits is the floor against offline brute force."""
_SHA256_BLOCK = 64
_MAX_HEX = {"hmac-sha256": 64, "xxh3-128": 32}
_MIN_HEX = 8
_FRACTION_HEX = 13
"""52 bits of digest make a float in [0, 1) with no rounding up to 1.0."""
_FRACTION_SCALE = float(16**_FRACTION_HEX)
_XXH3_SEED_LABEL = b"scrubgate xxh3-128 seed\x00"
_XXH3_PREFIX_LABEL = b"scrubgate xxh3-128 prefix\x00"


class _HashState(Protocol):
    """The part of a ``hashlib`` object this module uses."""

    def copy(self) -> _HashState: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def parse_hash_key(raw: bytes) -> bytes:
    """Turn the bytes of a key file or environment variable into a hashing key.

    One trailing newline (``\\n`` or ``\\r\\n``, as editors and ``echo`` write) is stripped.
    ``hex:<digits>`` is decoded as hex (whitespace inside is ignored); anything else is
    used as raw bytes. Raises ``ValueError`` if the key is shorter than 16 bytes or the hex
    is malformed; the message never contains the key.
    """
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    elif raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.startswith(b"hex:"):
        try:
            key = bytes.fromhex(raw[4:].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            # ``from None``: the original exception text quotes the offending input.
            raise ValueError("hash key: 'hex:' key is not valid hexadecimal") from None
    else:
        key = raw
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"hash key: must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    return key


def _hmac_pads(key: bytes) -> tuple[_HashState, _HashState]:
    """The two SHA-256 states of HMAC after absorbing ``key ^ ipad`` and ``key ^ opad``.

    This is RFC 2104 exactly (keys longer than a block are hashed first); precomputing
    both states and copying them per value is ~1.7x faster than ``hmac.HMAC.copy()``,
    which wraps the same work in Python-level object creation.
    """
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _xxh3_params(key: bytes) -> tuple[int, bytes]:
    """Seed and stream prefix for keyed xxh3-128.

    The Python binding exposes only xxh3's 64-bit seed, not its custom-secret API, so the
    key enters twice: a seed derived from it, and a 32-byte key-derived prefix hashed in
    front of every value so that all key bits (not just 64) influence the output. Both are
    derived with SHA-256 under distinct labels, so they never equal the key itself.
    """
    seed = int.from_bytes(hashlib.sha256(_XXH3_SEED_LABEL + key).digest()[:8], "big")
    prefix = hashlib.sha256(_XXH3_PREFIX_LABEL + key).digest()
    return seed, prefix


@dataclass(frozen=True, slots=True)
class KeyedHasher:
    """Keyed, deterministic hashing of text and JSON scalars.

    ``hash_text`` returns ``prefix`` + the lowercase hex digest truncated to ``length`` hex
    characters (8..64 for ``hmac-sha256``, 8..32 for ``xxh3-128``). Build once per settings
    compile; the hot-path methods allocate only the output. Never shows the key in ``repr``
    or exception messages.
    """

    key: bytes = field(repr=False)
    algorithm: Algorithm = "hmac-sha256"
    length: int = 32
    prefix: str = ""
    _pads: tuple[_HashState, _HashState] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    _seed: int = field(init=False, repr=False, compare=False, default=0)
    _xprefix: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes):
            raise TypeError("hash key must be bytes")
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"hash key must be at least {MIN_KEY_BYTES} bytes")
        if self.algorithm not in _MAX_HEX:
            raise ValueError(f"hash algorithm must be one of {sorted(_MAX_HEX)}")
        check_range("hash length", self.length, _MIN_HEX, _MAX_HEX[self.algorithm])
        if not isinstance(self.prefix, str):
            raise TypeError("hash prefix must be a string")
        # Frozen dataclass: derived state is set once here, never again.
        if self.algorithm == "hmac-sha256":
            object.__setattr__(self, "_pads", _hmac_pads(self.key))
        else:
            seed, xprefix = _xxh3_params(self.key)
            object.__setattr__(self, "_seed", seed)
            object.__setattr__(self, "_xprefix", xprefix)

    def _hexdigest(self, data: bytes) -> str:
        """Full lowercase hex digest of ``data`` under the key."""
        pads = self._pads
        if pads is None:
            return xxhash.xxh3_128_hexdigest(self._xprefix + data, self._seed)
        inner = pads[0].copy()
        inner.update(data)
        outer = pads[1].copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def hash_text(self, text: str) -> str:
        """``prefix`` + the first ``length`` hex chars of the keyed digest of UTF-8 ``text``.

        Lone surrogates (which only odd decoders produce) are encoded with
        ``surrogatepass`` so that every ``str`` hashes instead of raising.
        """
        try:
            data = text.encode()
        except UnicodeEncodeError:
            data = text.encode("utf-8", "surrogatepass")
        return self.prefix + self._hexdigest(data)[: self.length]

    def hash_value(self, value: JsonScalar) -> JsonScalar:
        """Hash strings and numbers; return ``None`` and bools unchanged.

        Numbers are hashed as their canonical text (see
        :func:`filters.actions.base.number_text`), so ``123``, ``123.0`` and ``"123"`` give
        the same hash: ids arrive as numbers from some SDKs and as strings from others, and
        joins must still work. ``None`` and bools carry at most one bit and hashing them
        would only turn them into two well-known constants.
        """
        if isinstance(value, str):
            return self.hash_text(value)
        if value is None or isinstance(value, bool):
            return value
        return self.hash_text(number_text(value))

    apply = hash_value

    def fraction(self, value: JsonScalar) -> float:
        """A deterministic number in ``[0, 1)`` from the keyed hash, for sampling.

        Independent of ``length`` and ``prefix``. Equal inputs (with ``123 == "123"`` as in
        :meth:`hash_value`) give equal fractions in every process; ``None`` and bools are
        hashed as their JSON text so every value has a fraction.
        """
        if isinstance(value, str):
            text = value
        elif value is None:
            text = "null"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = number_text(value)
        try:
            data = text.encode()
        except UnicodeEncodeError:
            data = text.encode("utf-8", "surrogatepass")
        return int(self._hexdigest(data)[:_FRACTION_HEX], 16) / _FRACTION_SCALE


__all__ = ["MIN_KEY_BYTES", "Algorithm", "KeyedHasher", "parse_hash_key"]
