"""Tests of filters.actions.hashing: keyed hashing and key parsing."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from filters.actions.hashing import KeyedHasher, parse_hash_key

KEY = b"0123456789abcdef0123456789abcdef"
REPO = Path(__file__).resolve().parents[3]


def reference_hmac(key: bytes, text: str) -> str:
    """Independent HMAC-SHA256 hex digest, computed with the standard library."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (KEY, "user-42"),
        (KEY, ""),
        (KEY, "ünïcödé ✓ 🙂"),
        (b"k" * 16, "minimum key length"),
        (b"k" * 64, "key exactly one SHA-256 block"),
        (b"k" * 65, "key longer than a block is hashed first"),
        (bytes(range(256)) * 2, "long binary key"),
        (KEY, "x" * 10_000),
    ],
    ids=["ascii", "empty", "unicode", "key16", "key64", "key65", "key512", "long-text"],
)
def test_hmac_matches_stdlib(key: bytes, text: str) -> None:
    hasher = KeyedHasher(key, length=64)
    assert hasher.hash_text(text) == reference_hmac(key, text)


def test_hmac_rfc4231_case_2() -> None:
    # RFC 4231 test case 2 uses a 4-byte key, below our minimum; pad-free equivalent:
    # HMAC keys shorter than a block are zero-padded, so key + b"\0" * 12 is the same MAC.
    key = b"Jefe" + b"\x00" * 12
    hasher = KeyedHasher(key, length=64)
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hasher.hash_text("what do ya want for nothing?") == expected


@pytest.mark.parametrize(
    ("length", "prefix"),
    [(8, ""), (32, ""), (64, ""), (16, "h:"), (12, "usr_")],
    ids=["len8", "len32", "len64", "prefix-colon", "prefix-word"],
)
def test_hmac_length_and_prefix(length: int, prefix: str) -> None:
    hasher = KeyedHasher(KEY, length=length, prefix=prefix)
    assert hasher.hash_text("abc") == prefix + reference_hmac(KEY, "abc")[:length]


# Pinned outputs: a change here breaks joins with data hashed by earlier versions.
@pytest.mark.parametrize(
    ("algorithm", "text", "expected"),
    [
        ("hmac-sha256", "user-42", "d6f70521973278294ce7b05519c3131f"),
        ("xxh3-128", "user-42", "6bc773fe3ace880ea373d870627e2744"),
        ("xxh3-128", "", "03f073e27e1d28bc1eb65a9f508d5fdf"),
    ],
    ids=["hmac", "xxh3", "xxh3-empty"],
)
def test_pinned_outputs(algorithm: str, text: str, expected: str) -> None:
    assert KeyedHasher(KEY, algorithm).hash_text(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["user-42", "", "ü" * 300], ids=["short", "empty", "long"])
def test_xxh3_construction(text: str) -> None:
    # The documented construction, recomputed here: a 64-bit seed and a 32-byte prefix,
    # both SHA-256 derived from the key under distinct labels.
    seed_bytes = hashlib.sha256(b"scrubgate xxh3-128 seed\x00" + KEY).digest()[:8]
    prefix = hashlib.sha256(b"scrubgate xxh3-128 prefix\x00" + KEY).digest()
    expected = xxhash.xxh3_128_hexdigest(prefix + text.encode(), int.from_bytes(seed_bytes))
    assert KeyedHasher(KEY, "xxh3-128").hash_text(text) == expected


# --------------------------------------------------------------------------------------
# hash_value
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "xxh3-128"])
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (123, "123"),
        (123.0, "123"),
        (-7, "-7"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (2**63, str(2**63)),
        (1e300, "1e+300"),
    ],
    ids=["int", "integral-float", "negative", "neg-zero", "float", "big-int", "huge-float"],
)
def test_numbers_hash_like_their_text(algorithm: str, a: float, b: str) -> None:
    hasher = KeyedHasher(KEY, algorithm)  # type: ignore[arg-type]
    assert hasher.hash_value(a) == hasher.hash_value(b) == hasher.hash_text(b)


@pytest.mark.parametrize("value", [None, True, False], ids=["none", "true", "false"])
def test_none_and_bools_unchanged(value: bool | None) -> None:
    assert KeyedHasher(KEY).hash_value(value) is value
    assert KeyedHasher(KEY).apply(value) is value


def test_huge_int_does_not_raise() -> None:
    # CPython refuses int -> str above 4300 digits; such a value must still hash.
    out = KeyedHasher(KEY).hash_value(10**5000)
    assert isinstance(out, str)
    assert len(out) == 32


def test_lone_surrogate_hashes() -> None:
    out = KeyedHasher(KEY).hash_text("a\ud800b")
    assert re.fullmatch(r"[0-9a-f]{32}", out)


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "xxh3-128"])
def test_different_keys_differ(algorithm: str) -> None:
    a = KeyedHasher(KEY, algorithm)  # type: ignore[arg-type]
    b = KeyedHasher(KEY[:-1] + b"X", algorithm)  # type: ignore[arg-type]
    assert a.hash_text("user-42") != b.hash_text("user-42")


def test_xxh3_uses_the_whole_key() -> None:
    # Keys differing only in their last byte must not collide (the seed alone is 64 bits).
    a = KeyedHasher(b"A" * 40, "xxh3-128")
    b = KeyedHasher(b"A" * 39 + b"B", "xxh3-128")
    assert a.hash_text("v") != b.hash_text("v")


# --------------------------------------------------------------------------------------
# fraction
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "xxh3-128"])
def test_fraction_range_and_spread(algorithm: str) -> None:
    hasher = KeyedHasher(KEY, algorithm)  # type: ignore[arg-type]
    values = [hasher.fraction(f"user-{i}") for i in range(2000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.45 < sum(values) / len(values) < 0.55
    assert sum(v < 0.1 for v in values) in range(140, 261)


def test_fraction_is_deterministic_and_ignores_format() -> None:
    a = KeyedHasher(KEY, length=8, prefix="p_")
    b = KeyedHasher(KEY, length=64)
    assert a.fraction("user-1") == b.fraction("user-1") == a.fraction("user-1")
    assert a.fraction(42) == a.fraction("42")
    assert a.fraction(None) == a.fraction("null")
    assert a.fraction(True) == a.fraction("true")
    assert a.fraction(False) == a.fraction("false")


def test_fraction_matches_digest() -> None:
    expected = int(reference_hmac(KEY, "user-1")[:13], 16) / 16**13
    assert KeyedHasher(KEY).fraction("user-1") == expected


# --------------------------------------------------------------------------------------
# Validation and secrecy of the key
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": b"short-key-15byte"[:15]}, ValueError),
        ({"key": "a string key, long enough"}, TypeError),
        ({"key": KEY, "algorithm": "md5"}, ValueError),
        ({"key": KEY, "length": 7}, ValueError),
        ({"key": KEY, "length": 65}, ValueError),
        ({"key": KEY, "algorithm": "xxh3-128", "length": 33}, ValueError),
        ({"key": KEY, "length": True}, ValueError),
        ({"key": KEY, "prefix": 5}, TypeError),
    ],
    ids=[
        "short-key",
        "str-key",
        "bad-algorithm",
        "length-too-small",
        "hmac-length-too-big",
        "xxh3-length-too-big",
        "bool-length",
        "non-str-prefix",
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        KeyedHasher(**kwargs)  # type: ignore[arg-type]
    key = kwargs["key"]
    text = str(info.value)
    if isinstance(key, bytes):
        assert key.decode() not in text
        assert key.hex() not in text
    else:
        assert str(key) not in text


def test_repr_hides_key() -> None:
    key = b"SECRET-KEY-MATERIAL-0123456789"
    text = repr(KeyedHasher(key)) + str(KeyedHasher(key, "xxh3-128"))
    assert "SECRET" not in text
    assert key.hex() not in text
    assert "hmac-sha256" in text


def test_is_frozen_and_comparable() -> None:
    hasher = KeyedHasher(KEY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        hasher.length = 8  # type: ignore[misc]
    assert hasher == KeyedHasher(KEY)
    assert hasher != KeyedHasher(KEY[::-1])
    assert hash(hasher) == hash(KeyedHasher(KEY))


# --------------------------------------------------------------------------------------
# parse_hash_key
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (KEY, KEY),
        (KEY + b"\n", KEY),
        (KEY + b"\r\n", KEY),
        (KEY + b"\n\n", KEY + b"\n"),
        (b"hex:" + KEY.hex().encode(), KEY),
        (b"hex:" + KEY.hex().upper().encode() + b"\n", KEY),
        (b"hex:00112233 44556677 8899aabb ccddeeff", bytes(range(0, 256, 17))),
        (b"\x00\xff" * 8, b"\x00\xff" * 8),
    ],
    ids=[
        "raw",
        "newline",
        "crlf",
        "one-newline-only",
        "hex",
        "hex-upper-newline",
        "hex-spaces",
        "binary",
    ],
)
def test_parse_hash_key(raw: bytes, expected: bytes) -> None:
    assert parse_hash_key(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"\n", b"fifteen-bytes!!", b"hex:0011", b"hex:zz" + b"00" * 16, b"hex:\xff\xfe" * 9],
    ids=["empty", "newline", "fifteen", "short-hex", "bad-hex", "non-ascii-hex"],
)
def test_parse_hash_key_rejects(raw: bytes) -> None:
    with pytest.raises(ValueError) as info:
        parse_hash_key(raw)
    text = str(info.value)
    assert "zz" not in text
    assert "fifteen" not in text
    # A chained exception (e.g. from bytes.fromhex) would quote the input in tracebacks.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


# --------------------------------------------------------------------------------------
# Determinism across processes
# --------------------------------------------------------------------------------------

_CHILD = """
import json, sys
from filters.actions.hashing import KeyedHasher
key = bytes.fromhex(sys.argv[1])
values = json.loads(sys.argv[2])
out = {}
for algorithm in ("hmac-sha256", "xxh3-128"):
    hasher = KeyedHasher(key, algorithm)
    out[algorithm] = [[hasher.hash_value(v), hasher.fraction(v)] for v in values]
print(json.dumps(out))
"""


def test_same_key_same_output_in_another_process() -> None:
    values = ["user-42", 123, 1.5, "ünïcödé", "", None]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, KEY.hex(), json.dumps(values)],
        capture_output=True,
        check=True,
        cwd=REPO,
        env=env,
        text=True,
        timeout=60,
    )
    theirs = json.loads(child.stdout)
    for algorithm in ("hmac-sha256", "xxh3-128"):
        hasher = KeyedHasher(KEY, algorithm)  # type: ignore[arg-type]
        ours = [[hasher.hash_value(v), hasher.fraction(v)] for v in values]
        assert theirs[algorithm] == ours


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())
HASHERS = [
    KeyedHasher(KEY),
    KeyedHasher(KEY, "xxh3-128", length=32),
    KeyedHasher(KEY, length=8, prefix="h_"),
]


@given(scalars)
def test_never_crashes(value: object) -> None:
    for hasher in HASHERS:
        out = hasher.hash_value(value)  # type: ignore[arg-type]
        if value is None or isinstance(value, bool):
            assert out is value
        else:
            assert isinstance(out, str)
            assert re.fullmatch(re.escape(hasher.prefix) + r"[0-9a-f]+", out)
            assert len(out) == len(hasher.prefix) + hasher.length
        assert 0.0 <= hasher.fraction(value) < 1.0  # type: ignore[arg-type]


@given(st.text(min_size=8))
def test_output_never_contains_input(text: str) -> None:
    for hasher in HASHERS[:2]:
        assert text not in hasher.hash_text(text)
