"""Bad input end to end: fail closed, answer as configured, count it, keep serving.

Every malformed or hostile body is sent to a ``scrub`` route with ``on_unparseable: drop``
(answered with the route's drop response) and to one with ``on_unparseable: reject``
(answered 400); size limits are answered 413 on both. For each: nothing reaches the
upstream, ``scrubgate_payload_errors_total`` grows for the route, and a good request sent
afterwards on the same proxy is forwarded normally.
"""

from __future__ import annotations

import asyncio
import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import orjson
import pytest

from proxy.metrics import REGISTRY
from tests.e2e.payloads import POLICY, build_envelope, sentry_event

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_BODY = 4 * 2**20

SETTINGS = (
    """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
limits: {max_body_bytes: 4MiB, max_decoded_bytes: 50MiB, max_ratio: 100}
"""
    + POLICY
    + """
routes:
  - name: bad-drop
    match: {path_prefix: /drop}
    upstream: "{upstream}"
    category: analytics
    policy: p
    on_unparseable: drop
    drop_response: {status: 202, body: '{"dropped":true}', content_type: application/json}
  - name: bad-reject
    match: {path_prefix: /reject}
    upstream: "{upstream}"
    category: analytics
    policy: p
    on_unparseable: reject
"""
)

GOOD = {"userId": "u-1", "text": "hello", "n": 1}
DROP_STATUS, DROP_BODY = 202, {"dropped": True}


@dataclass(frozen=True)
class Route:
    name: str
    prefix: str
    status: int  # the answer to an unparseable body


ROUTES = (Route("bad-drop", "/drop", DROP_STATUS), Route("bad-reject", "/reject", 400))


def payload_errors(route: str, codec: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "scrubgate_payload_errors_total", {"route": route, "codec": codec, "reason": reason}
    )
    return value or 0.0


def all_payload_errors(route: str) -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "scrubgate_payload_errors"
        for sample in metric.samples
        if sample.name == "scrubgate_payload_errors_total" and sample.labels["route"] == route
    )


@pytest.fixture(params=ROUTES, ids=lambda route: route.name)
def route(request) -> Route:
    return request.param


async def post(
    proxy: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as client,
        client.post(proxy + path, data=body, headers=headers or {}) as response,
    ):
        return response.status, await response.read()


async def assert_still_serving(proxy: str, vendor, prefix: str) -> None:
    """Nothing of the bad request went upstream, and a good request now goes through."""
    assert vendor.arrivals == []
    status, body = await post(
        proxy, prefix + "/ok", orjson.dumps(GOOD), {"Content-Type": "application/json"}
    )
    assert (status, body) == (200, b'{"ok":true}')
    (arrival,) = vendor.arrivals
    assert orjson.loads(arrival.body)["text"] == "hello"


def assert_unparseable_answer(route: Route, status: int, body: bytes) -> None:
    assert status == route.status
    if route.status == DROP_STATUS:
        assert orjson.loads(body) == DROP_BODY
    else:
        answer = orjson.loads(body)
        assert answer["route"] == route.name and answer["error"]


@dataclass(frozen=True)
class Bad:
    id: str
    body: bytes
    headers: dict[str, str]
    codec: str
    subpath: str = "/v1/track"


def _envelope(length_delta: int) -> bytes:
    """An envelope whose event item header claims ``length_delta`` more bytes than it has."""
    payload = orjson.dumps(sentry_event())
    good = build_envelope([({"type": "event"}, payload)], {"event_id": "0" * 32})
    return good.replace(
        f'"length":{len(payload)}'.encode(), f'"length":{len(payload) + length_delta}'.encode()
    )


def _deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


UNPARSEABLE = (
    Bad(
        "invalid-json", b'{"userId": "u-1", "text": ', {"Content-Type": "application/json"}, "json"
    ),
    Bad(
        "truncated-gzip",
        gzip.compress(orjson.dumps(GOOD))[:-12],
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        "encoding",
    ),
    Bad(
        "corrupt-deflate",
        b"\x78\x9c" + b"\xff" * 40,
        {"Content-Type": "application/json", "Content-Encoding": "deflate"},
        "encoding",
    ),
    Bad(
        "unknown-content-encoding",
        orjson.dumps(GOOD),
        {"Content-Type": "application/json", "Content-Encoding": "compress"},
        "encoding",
    ),
    Bad(
        "json-labelled-protobuf-otlp",
        orjson.dumps({"resourceSpans": [{"scopeSpans": []}]}),
        {"Content-Type": "application/x-protobuf"},
        "otlp",
        "/v1/traces",
    ),
    Bad(
        "json-labelled-protobuf",
        orjson.dumps(GOOD),
        {"Content-Type": "application/x-protobuf"},
        "binary",
    ),
    Bad(
        "envelope-item-length-overruns",
        _envelope(+25),
        {"Content-Type": "application/x-sentry-envelope"},
        "sentry_envelope",
    ),
    Bad(
        "envelope-item-length-short",
        _envelope(-7),
        {"Content-Type": "application/x-sentry-envelope"},
        "sentry_envelope",
    ),
    Bad(
        "json-10000-nested-arrays",
        _deep_json(10_000),
        {"Content-Type": "application/json"},
        "json",
    ),
    Bad(
        "form-not-utf8",
        b"a=\xff\xfe",
        {"Content-Type": "application/x-www-form-urlencoded"},
        "form",
    ),
    Bad(
        "multipart-without-boundary",
        b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
        {"Content-Type": "multipart/form-data"},
        "multipart",
    ),
)


@pytest.mark.parametrize("bad", UNPARSEABLE, ids=lambda bad: bad.id)
async def test_unparseable_body_is_answered_per_route_and_never_forwarded(
    proxy: str, vendor, route: Route, bad: Bad
) -> None:
    before = payload_errors(route.name, bad.codec, "unparseable")
    status, body = await post(proxy, route.prefix + bad.subpath, bad.body, bad.headers)
    assert_unparseable_answer(route, status, body)
    assert payload_errors(route.name, bad.codec, "unparseable") == before + 1
    await assert_still_serving(proxy, vendor, route.prefix)


async def test_document_deeper_than_max_depth_is_answered_per_route(
    proxy: str, vendor, route: Route
) -> None:
    # 200 levels: valid JSON for orjson (limit 1024), deeper than limits.max_depth (128).
    document = b'{"userId": "u-1", "nested": ' + _deep_json(200) + b"}"
    before = payload_errors(route.name, "engine", "max_depth")
    status, body = await post(
        proxy, route.prefix + "/v1/track", document, {"Content-Type": "application/json"}
    )
    assert payload_errors(route.name, "engine", "max_depth") == before + 1
    assert_unparseable_answer(route, status, body)
    await assert_still_serving(proxy, vendor, route.prefix)


async def test_document_deeper_than_max_depth_is_not_forwarded(proxy: str, vendor) -> None:
    document = b'{"userId": "u-1", "nested": ' + _deep_json(200) + b"}"
    before = payload_errors("bad-reject", "engine", "max_depth")
    status, _ = await post(
        proxy, "/reject/v1/track", document, {"Content-Type": "application/json"}
    )
    assert status in (400, 413)
    assert payload_errors("bad-reject", "engine", "max_depth") == before + 1
    await assert_still_serving(proxy, vendor, "/reject")


# --- size limits: 413 on every route ---------------------------------------------------------


async def test_declared_oversized_body_is_413(proxy: str, vendor, route: Route) -> None:
    before = payload_errors(route.name, "http", "body_size")
    body = b'{"text": "' + b"a" * MAX_BODY + b'"}'
    status, answer = await post(
        proxy, route.prefix + "/v1/track", body, {"Content-Type": "application/json"}
    )
    assert status == 413
    assert orjson.loads(answer)["route"] == route.name
    assert payload_errors(route.name, "http", "body_size") == before + 1
    await assert_still_serving(proxy, vendor, route.prefix)


async def test_chunked_oversized_body_is_413(proxy: str, vendor, route: Route) -> None:
    """No Content-Length to refuse up front: the limit is enforced while reading."""

    async def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(MAX_BODY // 2**16 + 1):
            yield b"a" * 2**16
        yield b'"}'

    before = payload_errors(route.name, "http", "body_size")
    status, _ = await post(
        proxy, route.prefix + "/v1/track", chunks(), {"Content-Type": "application/json"}
    )
    assert status == 413
    assert payload_errors(route.name, "http", "body_size") == before + 1
    await assert_still_serving(proxy, vendor, route.prefix)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """1 GiB of zeros as one gzip member (about 1 MiB).

    Built in milliseconds instead of seconds: after a full flush the compressor starts
    from a clean state, so every 1 MiB block of zeros compresses to the same bytes."""
    block = bytes(2**20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) == piece
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (1024 * len(block)) & 0xFFFFFFFF)
    bomb = header + piece * 1024 + compressor.flush() + trailer
    # Sanity: it is a valid gzip stream of zeros (checked on its first 8 MiB only).
    start = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(bomb, 8 * 2**20)
    assert len(start) == 8 * 2**20 and not start.strip(b"\x00")
    return bomb


async def test_gzip_bomb_is_413(proxy: str, vendor, route: Route, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < MAX_BODY
    before = payload_errors(route.name, "encoding", "max_decoded_bytes")
    status, answer = await post(
        proxy,
        route.prefix + "/v1/track",
        gzip_bomb,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 413
    assert orjson.loads(answer)["route"] == route.name
    assert payload_errors(route.name, "encoding", "max_decoded_bytes") == before + 1
    await assert_still_serving(proxy, vendor, route.prefix)


async def test_unlabelled_gzip_bomb_is_413(proxy: str, vendor, gzip_bomb: bytes) -> None:
    """Magic sniffing is bounded exactly like a declared Content-Encoding."""
    before = payload_errors("bad-drop", "encoding", "max_decoded_bytes")
    status, _ = await post(proxy, "/drop/v1/track", gzip_bomb, {"Content-Type": "application/json"})
    assert status == 413
    assert payload_errors("bad-drop", "encoding", "max_decoded_bytes") == before + 1
    await assert_still_serving(proxy, vendor, "/drop")


# --- a body shorter than its Content-Length ----------------------------------------------


async def send_cut_short_body(proxy: str, path: str) -> bytes:
    """Promise 1000 bytes, send 40, close the sending side; return whatever comes back."""
    host, port = proxy.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        ).encode()
        + b'{"userId": "u-1", "text": "jane.doe@exa'
    )
    await writer.drain()
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def test_body_shorter_than_content_length_is_not_forwarded(
    proxy: str, vendor, route: Route
) -> None:
    """Nothing of a cut-short body may be forwarded (not even its first 40 bytes), it is
    never answered as a success, and the proxy keeps serving."""
    answer = await send_cut_short_body(proxy, route.prefix + "/v1/track")
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status >= 400, "a cut-short body must not be answered as forwarded"
    await assert_still_serving(proxy, vendor, route.prefix)


async def test_body_shorter_than_content_length_is_counted(
    proxy: str, vendor, route: Route
) -> None:
    before = all_payload_errors(route.name)
    await send_cut_short_body(proxy, route.prefix + "/v1/track")
    assert vendor.arrivals == []
    assert all_payload_errors(route.name) == before + 1
