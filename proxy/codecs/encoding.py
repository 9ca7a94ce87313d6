"""Content encodings: undo ``Content-Encoding`` layers with bounded memory, redo them after.

``decode_content`` returns the decoded bytes plus the *layers* it removed, in the order
they were applied by the sender. ``encode_content`` re-applies those layers, so the body
that goes upstream is compressed exactly as the client compressed it and the original
``Content-Encoding`` header stays true (the proxy keeps that header as it was). A layer is
one of:

``gzip``         gzip (``Content-Encoding: gzip`` or ``x-gzip``)
``deflate``      zlib-wrapped deflate (RFC 1950), what ``deflate`` should mean
``deflate-raw``  bare deflate (RFC 1951), what some clients send as ``deflate``
``br``           brotli
``zstd``         Zstandard

Every layer is decompressed by a streaming decompressor that is never allowed to produce
more than the budget ``min(max_decoded_bytes, len(body) * max_ratio)``, so a
decompression bomb stops at the cap holding at most about the budget in memory.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import zstandard

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs.base import CodecLimits

CODEC = "encoding"

GZIP = "gzip"
DEFLATE = "deflate"
DEFLATE_RAW = "deflate-raw"
BROTLI = "br"
ZSTD = "zstd"

LAYERS: tuple[str, ...] = (GZIP, DEFLATE, DEFLATE_RAW, BROTLI, ZSTD)
"""Every layer name ``decode_content`` may return and ``encode_content`` accepts."""

MAX_LAYERS = 4
"""More stacked encodings than this is not a real client, only a way to burn CPU."""

_HEADER_TOKENS: dict[str, str] = {
    "gzip": GZIP,
    "x-gzip": GZIP,
    "deflate": DEFLATE,
    "br": BROTLI,
    "zstd": ZSTD,
}

_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zlib headers for a 32 KiB window at each compression level; the second byte makes the
# 16-bit header a multiple of 31, which is why only these four are seen in practice.
_ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")

# zlib and brotli are asked for at most this much output per call, so the decoder's own
# buffer and the copy appended to the output stay small next to the budget.
_OUTPUT_STEP = 1 << 20
# Worst case zstd expansion is one 128 KiB RLE block per 4 input bytes (32 KiB per byte).
# Input is fed at most this many bytes at a time, and fewer as the output nears the
# budget, so that one step never ends more than about one _OUTPUT_STEP past it.
_ZSTD_INPUT_STEP = 512
_ZSTD_WORST_EXPANSION = 32 * 1024
ZSTD_MAX_WINDOW = 1 << 24
"""Largest zstd window accepted (16 MiB): bounds the decoder's own memory."""

# Level 3 compresses a 127 KB JSON batch in half the time of the default 6 (0.9 vs 1.8 ms
# here) for a body ~15% larger: on the proxy's hot path time matters more than bytes.
_GZIP_LEVEL = 3
_ZLIB_LEVEL = 3
_BROTLI_QUALITY = 5  # brotli's default (11) is far too slow for a proxy's hot path
_ZSTD_LEVEL = 3


def decode_content(
    body: bytes, content_encoding: str | None, limits: CodecLimits
) -> tuple[bytes, tuple[str, ...]]:
    """Decode ``body`` per its ``Content-Encoding`` header value.

    Stacked encodings (``gzip, br``) were applied left to right, so they are undone right
    to left. Without a header (or with ``identity``), a body that starts with gzip or zstd
    magic, or with a zlib header that also decodes cleanly, is decoded as such: some SDKs
    compress without saying so. Returns ``(decoded, layers)`` where ``layers`` is what
    ``encode_content`` needs to rebuild an equivalent body.

    Raises ``LimitExceeded`` when the body or any decoded layer passes its cap, and
    ``PayloadError`` for unknown encodings and truncated or corrupt streams.
    """
    if len(body) > limits.max_body_bytes:
        raise LimitExceeded(CODEC, "max_body_bytes", "body larger than the configured limit")
    budget = decoded_budget(len(body), limits)
    declared = _parse_header(content_encoding)
    if not declared:
        return _decode_sniffed(body, budget)
    data = body
    layers: list[str] = []
    for token in reversed(declared):
        data, layer = _DECODERS[token](data, budget)
        layers.append(layer)
    return data, tuple(reversed(layers))


def encode_content(data: bytes, encodings: tuple[str, ...]) -> bytes:
    """Apply ``encodings`` (layers as returned by ``decode_content``) in order."""
    for layer in encodings:
        encoder = _ENCODERS.get(layer)
        if encoder is None:
            raise PayloadError(CODEC, "unknown encoding layer")
        data = encoder(data)
    return data


def inflate_any(data: bytes, budget: int) -> tuple[bytes, str]:
    """Inflate a zlib-wrapped or raw deflate stream (whichever it is) within ``budget``.

    Returns the inflated bytes and the layer name (``deflate`` or ``deflate-raw``). Used
    for ``Content-Encoding: deflate`` and by codecs that carry deflate inside a body.
    """
    if _looks_like_zlib(data):
        try:
            return _inflate(data, zlib.MAX_WBITS, budget), DEFLATE
        except LimitExceeded:
            raise
        except PayloadError:
            pass  # a raw stream whose first bytes happen to form a valid zlib header
    return _inflate(data, -zlib.MAX_WBITS, budget), DEFLATE_RAW


def decoded_budget(body_length: int, limits: CodecLimits) -> int:
    """How many bytes a body of ``body_length`` may decode to: the smaller of the size
    cap and the ratio cap."""
    return min(limits.max_decoded_bytes, body_length * limits.max_ratio)


def _parse_header(content_encoding: str | None) -> list[str]:
    if content_encoding is None:
        return []
    tokens = [token.strip().lower() for token in content_encoding.split(",")]
    tokens = [token for token in tokens if token and token != "identity"]
    if len(tokens) > MAX_LAYERS:
        raise PayloadError(CODEC, "too many stacked content encodings")
    for token in tokens:
        if token not in _HEADER_TOKENS:
            # The token is client-controlled text, so it is not echoed into the message.
            raise PayloadError(CODEC, "unsupported content encoding")
    return [_HEADER_TOKENS[token] for token in tokens]


def _decode_sniffed(body: bytes, budget: int) -> tuple[bytes, tuple[str, ...]]:
    if body.startswith(_GZIP_MAGIC):
        return _decode_gzip(body, budget)[0], (GZIP,)
    if body.startswith(_ZSTD_MAGIC):
        return _decode_zstd(body, budget)[0], (ZSTD,)
    if body[:2] in _ZLIB_HEADERS:
        # "x^" could start plain text, so a zlib guess only counts if the whole stream
        # (with its Adler-32 checksum) decodes; otherwise the body is taken as it is.
        try:
            return _inflate(body, zlib.MAX_WBITS, budget), (DEFLATE,)
        except LimitExceeded:
            raise
        except PayloadError:
            return body, ()
    return body, ()


def _decode_gzip(data: bytes, budget: int) -> tuple[bytes, str]:
    # A gzip file may hold several members back to back; each one is its own stream.
    out = bytearray()
    rest = data
    while True:
        member, rest = _inflate_member(rest, zlib.MAX_WBITS | 16, budget - len(out))
        out += member
        if not rest:
            return bytes(out), GZIP
        if not rest.startswith(_GZIP_MAGIC):
            raise PayloadError(CODEC, "trailing data after gzip stream")


def _decode_deflate(data: bytes, budget: int) -> tuple[bytes, str]:
    return inflate_any(data, budget)


def _inflate(data: bytes, wbits: int, budget: int) -> bytes:
    out, rest = _inflate_member(data, wbits, budget)
    if rest:
        raise PayloadError(CODEC, "trailing data after deflate stream")
    return out


def _inflate_member(data: bytes, wbits: int, budget: int) -> tuple[bytes, bytes]:
    """Inflate one stream; returns its output and the bytes that follow it."""
    decompressor = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    try:
        while not decompressor.eof:
            piece = decompressor.decompress(pending, _step(len(out), budget))
            out += piece
            _check_budget(len(out), budget)
            pending = decompressor.unconsumed_tail
            if not piece and not pending:
                break
    except zlib.error:
        raise PayloadError(CODEC, "corrupt deflate stream") from None
    if not decompressor.eof:
        raise PayloadError(CODEC, "truncated deflate stream")
    return bytes(out), decompressor.unused_data


def _decode_brotli(data: bytes, budget: int) -> tuple[bytes, str]:
    if not _BROTLI_CAN_LIMIT_OUTPUT:
        # Without an output limit a brotli bomb cannot be stopped in time: refuse instead.
        raise PayloadError(CODEC, "brotli decoding needs the brotli package >= 1.2")
    decompressor = brotli.Decompressor()
    out = bytearray()
    pending = data
    try:
        while not decompressor.is_finished():
            piece = decompressor.process(pending, output_buffer_limit=_step(len(out), budget))
            out += piece
            _check_budget(len(out), budget)
            if pending:
                pending = b""
            elif not piece:
                break  # no input left and nothing more comes out: the stream is cut short
    except brotli.error:
        raise PayloadError(CODEC, "corrupt brotli stream") from None
    if not decompressor.is_finished():
        raise PayloadError(CODEC, "truncated brotli stream")
    return bytes(out), BROTLI


def _decode_zstd(data: bytes, budget: int) -> tuple[bytes, str]:
    # python-zstandard has no output cap per call, so input is fed in small steps (see
    # _ZSTD_INPUT_STEP); frames are decoded one after the other, like zstd's CLI does.
    context = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    out = bytearray()
    rest = data
    if not rest:
        raise PayloadError(CODEC, "truncated zstd stream")
    try:
        while rest:
            if not rest.startswith(_ZSTD_MAGIC):
                raise PayloadError(CODEC, "trailing data after zstd stream")
            rest = _decode_zstd_frame(context, rest, out, budget)
    except zstandard.ZstdError:
        raise PayloadError(CODEC, "corrupt zstd stream") from None
    return bytes(out), ZSTD


def _decode_zstd_frame(
    context: zstandard.ZstdDecompressor, data: bytes, out: bytearray, budget: int
) -> bytes:
    decompressor = context.decompressobj()
    position = 0
    while not decompressor.eof:
        if position >= len(data):
            raise PayloadError(CODEC, "truncated zstd stream")
        chunk = data[position : position + _zstd_input_step(len(out), budget)]
        position += len(chunk)
        out += decompressor.decompress(chunk)
        _check_budget(len(out), budget)
    return decompressor.unused_data + data[position:]


def _zstd_input_step(produced: int, budget: int) -> int:
    room = budget - produced + _OUTPUT_STEP
    return max(4, min(_ZSTD_INPUT_STEP, room // _ZSTD_WORST_EXPANSION))


def _brotli_can_limit_output() -> bool:
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except TypeError:
        return False
    return True


_BROTLI_CAN_LIMIT_OUTPUT = _brotli_can_limit_output()


def _step(produced: int, budget: int) -> int:
    # One more byte than the budget allows, so overflowing is seen (0 would mean
    # "unlimited" to zlib), and never more than one step.
    return min(budget - produced + 1, _OUTPUT_STEP)


def _check_budget(size: int, budget: int) -> None:
    if size > budget:
        raise LimitExceeded(
            CODEC, "max_decoded_bytes", "decoded body exceeds the size or ratio limit"
        )


def _looks_like_zlib(data: bytes) -> bool:
    # RFC 1950: method 8 (deflate) in the low nibble, header a multiple of 31, no preset
    # dictionary (HTTP deflate never uses one).
    if len(data) < 2:
        return False
    first, second = data[0], data[1]
    return first & 0x0F == 8 and (first << 8 | second) % 31 == 0 and not second & 0x20


def _encode_gzip(data: bytes) -> bytes:
    # mtime=0 keeps the output deterministic (same input, same bytes).
    return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)


def _encode_deflate(data: bytes) -> bytes:
    return zlib.compress(data, _ZLIB_LEVEL)


def _encode_deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _encode_brotli(data: bytes) -> bytes:
    return brotli.compress(data, quality=_BROTLI_QUALITY)


def _encode_zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)


_DECODERS: dict[str, Callable[[bytes, int], tuple[bytes, str]]] = {
    GZIP: _decode_gzip,
    DEFLATE: _decode_deflate,
    BROTLI: _decode_brotli,
    ZSTD: _decode_zstd,
}

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    GZIP: _encode_gzip,
    DEFLATE: _encode_deflate,
    DEFLATE_RAW: _encode_deflate_raw,
    BROTLI: _encode_brotli,
    ZSTD: _encode_zstd,
}
