"""Decompression bombs against ``scrubgate run`` in its own process: every kind stops at
the decoded-size cap, is answered 413, never reaches the upstream, and the proxy's peak
resident memory (``VmHWM``) grows by no more than a few times the configured cap.

``test_bad_input.py`` covers the gzip bomb's answer and metrics in process; here each
encoding and stack of encodings is measured from outside, after a warm-up that brings the
proxy to its steady-state footprint.
"""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Callable, Iterator

import aiohttp
import brotli
import orjson
import pytest
import zstandard

from tests.e2e.conftest import Upstream
from tests.e2e.payloads import HASH_KEY, POLICY
from tests.e2e.processes import ProxyProcess, scrubgate_process

pytestmark = pytest.mark.asyncio(loop_scope="module")

MIB = 2**20
MAX_BODY = 2 * MIB
MAX_DECODED = 4 * MIB
BOMB_SIZE = 64 * MIB
"""What each bomb decodes to: sixteen times the cap."""
GROWTH_BOUND = 3 * MAX_DECODED + 2 * MAX_BODY + 8 * MIB
"""Peak RSS growth allowed over all bombs: the decoder's output (the cap plus one step)
and its copy, the body as read and as held, plus slack for the allocator and aiohttp's
buffers. An unbounded decoder needs BOMB_SIZE; zstd fed 512 input bytes per step (before
the fix) overshot the cap by up to 16 MiB and grew about 30 MiB here."""

SETTINGS = (
    f"""
version: 1
listeners: [{{name: main, port: 0}}]
admin: {{port: 0}}
hashing: {{key_env: E2E_HASH_KEY}}
limits: {{max_body_bytes: {MAX_BODY}, max_decoded_bytes: {MAX_DECODED}, max_ratio: 1000}}
"""
    + POLICY
    + """
routes:
  - {name: crash, match: {path_prefix: /api}, upstream: "{upstream}", category: crash, policy: p}
  - {name: bombs, match: {path_prefix: /}, upstream: "{upstream}", category: analytics, policy: p}
"""
)


def _stream(compressor: Callable[[bytes], bytes], finish: Callable[[], bytes]) -> bytes:
    block = bytes(MIB)
    return b"".join(compressor(block) for _ in range(BOMB_SIZE // MIB)) + finish()


def deflate_bomb(wbits: int) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, wbits)
    return _stream(compressor.compress, compressor.flush)


def brotli_bomb() -> bytes:
    compressor = brotli.Compressor(quality=5)
    return _stream(compressor.process, compressor.finish)


def zstd_bomb() -> bytes:
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    return _stream(compressor.compress, compressor.flush)


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


GZIP = deflate_bomb(zlib.MAX_WBITS | 16)
ZLIB = deflate_bomb(zlib.MAX_WBITS)
ZSTD = zstd_bomb()

# id -> (path, Content-Encoding, body)
BOMBS: dict[str, tuple[str, str | None, bytes]] = {
    "gzip": ("/t", "gzip", GZIP),
    "deflate-zlib": ("/t", "deflate", ZLIB),
    "deflate-raw": ("/t", "deflate", deflate_bomb(-zlib.MAX_WBITS)),
    "br": ("/t", "br", brotli_bomb()),
    "zstd": ("/t", "zstd", ZSTD),
    "gzip-in-br": ("/t", "gzip, br", brotli.compress(GZIP)),
    "zstd-in-gzip": ("/t", "zstd, gzip", _gzip(ZSTD)),
    "gzip-in-gzip": ("/t", "gzip, gzip", _gzip(GZIP)),
    # 64 members of 1 MiB each: the budget must hold across members, not per member.
    "many-gzip-members": ("/t", "gzip", _gzip(bytes(MIB)) * (BOMB_SIZE // MIB)),
    "sniffed-zstd-no-header": ("/t", None, ZSTD),
    "sentry-store-base64-zlib": ("/api/1/store/", None, base64.b64encode(ZLIB)),
}


@pytest.fixture(scope="module")
def proxy_process(
    module_upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    settings = SETTINGS.replace("{upstream}", module_upstream.url)
    with scrubgate_process(
        settings, tmp_path_factory.mktemp("bombs"), {"E2E_HASH_KEY": HASH_KEY}
    ) as running:
        yield running


async def post(url: str, body: bytes, content_encoding: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if content_encoding:
        headers["Content-Encoding"] = content_encoding
    async with (
        aiohttp.ClientSession() as client,
        client.post(url, data=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def warm_up(proxy: ProxyProcess) -> None:
    """Real requests through every decoder, so lazily built state is counted before."""
    event = orjson.dumps({"userId": "u-1", "text": os.urandom(50_000).hex()})
    for encoding, encode in (
        (None, bytes),
        ("gzip", _gzip),
        ("br", brotli.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ):
        for _ in range(3):
            assert await post(proxy.base + "/t", encode(event), encoding) == 200


async def test_every_bomb_stops_at_the_cap_with_bounded_memory(
    proxy_process: ProxyProcess, module_upstream: Upstream
) -> None:
    await warm_up(proxy_process)
    module_upstream.reset()
    before = proxy_process.status_kib("VmHWM") * 1024
    for name, (path, encoding, body) in BOMBS.items():
        assert len(body) <= MAX_BODY, name
        assert await post(proxy_process.base + path, body, encoding) == 413, name
    growth = proxy_process.status_kib("VmHWM") * 1024 - before
    assert module_upstream.arrivals == []
    assert growth < GROWTH_BOUND, f"peak RSS grew {growth / MIB:.1f} MiB"
    # Still serving.
    assert await post(proxy_process.base + "/t", b'{"a":1}', None) == 200
