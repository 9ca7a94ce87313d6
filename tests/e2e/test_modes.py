"""Category modes end to end: forward, scrub, drop, block, and unrouted requests."""

import asyncio
import gzip

import aiohttp
import orjson
import pytest

from proxy.metrics import REGISTRY

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
categories: {clickstream: drop, crash: block}
policies:
  p:
    rules:
      - {id: hash-ids, action: hash, select: [userId, "**.userId"]}
      - {id: redact, action: redact}
routes:
  - {name: scrubbed, match: {path_prefix: /scrub}, upstream: "{upstream}", category: analytics, policy: p}
  - {name: forwarded, match: {path_prefix: /fwd}, upstream: "{upstream}", category: traces, mode: forward}
  - name: dropped
    match: {path_prefix: /drop}
    upstream: "{upstream}"
    category: clickstream
    drop_response: {status: 202, body: '{"accepted":1}', content_type: application/json}
  - {name: blocked, match: {path_prefix: /block}, upstream: "{upstream}", category: crash}
"""

EVENT = {"userId": "u-1", "text": "mail me at jane@example.com", "n": 3}


async def test_scrub_mode_sends_scrubbed_json(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/scrub/x?a=1", json=EVENT) as response,
    ):
        assert response.status == 200
        assert await response.read() == b'{"ok":true}'
    (arrival,) = upstream.arrivals
    sent = orjson.loads(arrival.body)
    assert sent["text"] == "mail me at [email]"
    assert sent["userId"] != "u-1" and len(sent["userId"]) == 32
    assert sent["n"] == 3
    assert arrival.path_qs == "/scrub/x?a=1"
    assert int(arrival.headers["Content-Length"]) == len(arrival.raw)


async def test_scrub_keeps_gzip_encoding(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    body = gzip.compress(orjson.dumps({"batch": [EVENT, EVENT]}))
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/scrub", data=body, headers=headers) as response,
    ):
        assert response.status == 200
    (arrival,) = upstream.arrivals
    assert arrival.headers["Content-Encoding"] == "gzip"
    sent = orjson.loads(arrival.body)
    assert [event["text"] for event in sent["batch"]] == ["mail me at [email]"] * 2


async def test_forward_mode_relays_bytes_unchanged(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    body = orjson.dumps(EVENT)
    async with aiohttp.ClientSession() as client, client.post(base + "/fwd", data=body) as response:
        assert response.status == 200
    assert upstream.arrivals[0].raw == body


async def test_drop_mode_answers_configured_success_and_sends_nothing(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/drop", json=EVENT) as response,
    ):
        assert response.status == 202
        assert await response.json() == {"accepted": 1}
    assert upstream.arrivals == []


async def test_block_mode_answers_403_and_sends_nothing(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/block", json=EVENT) as response,
    ):
        assert response.status == 403
        assert (await response.json())["error"] == "blocked by policy"
    assert upstream.arrivals == []


async def test_unrouted_requests_get_404_and_are_never_relayed(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    async with aiohttp.ClientSession() as client, client.get(base + "/elsewhere") as response:
        assert response.status == 404
        assert "error" in await response.json()
    assert upstream.arrivals == []


async def test_upstream_status_and_body_are_relayed_unchanged(start_proxy, upstream):
    upstream.status = 207
    upstream.reply = b"exactly-this"
    upstream.reply_headers = {"Content-Type": "text/plain", "X-Vendor": "v"}
    base = await start_proxy(SETTINGS)
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/scrub", json=EVENT) as response,
    ):
        assert response.status == 207
        assert await response.read() == b"exactly-this"
        assert response.headers["X-Vendor"] == "v"


@pytest.mark.parametrize("size", [10, 64 * 1024, 64 * 1024 + 1, 3 * 2**20])
async def test_answers_small_and_large_are_relayed_byte_for_byte(start_proxy, upstream, size):
    upstream.reply = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    upstream.reply_headers = {"Content-Type": "application/octet-stream", "Content-Encoding": "br"}
    base = await start_proxy(SETTINGS)
    async with (
        aiohttp.ClientSession(auto_decompress=False) as client,
        client.post(base + "/fwd", data=b"{}") as response,
    ):
        assert response.headers["Content-Length"] == str(size)
        assert response.headers["Content-Encoding"] == "br"
        assert await response.read() == upstream.reply


async def test_head_answers_keep_the_upstream_content_length(start_proxy, upstream):
    upstream.reply = b"0123456789"
    base = await start_proxy(SETTINGS)
    reader, writer = await asyncio.open_connection(*base.removeprefix("http://").split(":"))
    writer.write(b"HEAD /fwd/x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 10" in head
    assert body == b""


async def test_a_client_leaving_mid_answer_is_counted_not_an_error(start_proxy, upstream, caplog):
    upstream.reply = b"z" * (8 * 2**20)
    base = await start_proxy(SETTINGS)
    before = REGISTRY.get_sample_value("scrubgate_client_disconnects_total") or 0
    reader, writer = await asyncio.open_connection(*base.removeprefix("http://").split(":"))
    writer.write(b"POST /fwd/x HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\n\r\n{}")
    await reader.readexactly(1024)
    writer.transport.abort()
    deadline = asyncio.get_running_loop().time() + 10
    while (REGISTRY.get_sample_value("scrubgate_client_disconnects_total") or 0) == before:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    async with aiohttp.ClientSession() as client, client.post(base + "/fwd", data=b"{}") as again:
        assert again.status == 200
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def test_unreachable_upstream_is_502(start_proxy):
    base = await start_proxy(SETTINGS.replace('"{upstream}"', "http://127.0.0.1:9"))
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/scrub", json=EVENT) as response,
    ):
        assert response.status == 502
        assert "unreachable" in (await response.json())["error"]


async def test_slow_upstream_is_504(start_proxy, upstream):
    upstream.delay = 2.0
    base = await start_proxy(
        SETTINGS.replace("categories:", "limits: {upstream_timeout: 200ms}\ncategories:")
    )
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/scrub", json=EVENT) as response,
    ):
        assert response.status == 504
        assert "timed out" in (await response.json())["error"]
