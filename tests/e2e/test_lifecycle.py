"""Backpressure, slow clients and graceful drain, against a real proxy and upstream."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

import aiohttp
import orjson

from proxy.metrics import REGISTRY
from tests.e2e.processes import exit_code, free_port, spawn_proxy, wait_ready

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
limits:
  max_concurrent_requests: 2
  max_buffered_bytes: 4KiB
  client_header_timeout: 300ms
  client_body_timeout: 300ms
policies:
  p: {rules: [{id: redact, action: redact}]}
routes:
  - {name: scrub, match: {path_prefix: /v1}, upstream: "{upstream}", category: analytics, policy: p}
"""


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def host_port(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


async def test_requests_beyond_the_in_flight_limit_get_503_with_retry_after(start_proxy, upstream):
    upstream.delay = 0.5
    base = await start_proxy(SETTINGS)
    before = sample("scrubgate_overload_rejections_total", route="scrub", reason="in_flight")
    async with aiohttp.ClientSession() as client:

        async def post() -> tuple[int, str | None]:
            async with client.post(base + "/v1/t", json={"n": 1}) as response:
                await response.read()
                return response.status, response.headers.get("Retry-After")

        slow = [asyncio.create_task(post()) for _ in range(2)]
        while len(upstream.arrivals) < 2:
            await asyncio.sleep(0.01)
        assert sample("scrubgate_in_flight_requests") == 2
        assert await post() == (503, "1")
        assert [await task for task in slow] == [(200, None), (200, None)]
        assert sample("scrubgate_in_flight_requests") == 0
        assert await post() == (200, None)
    assert (
        sample("scrubgate_overload_rejections_total", route="scrub", reason="in_flight")
        == before + 1
    )


async def test_bodies_beyond_the_buffer_budget_get_503(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    before = sample("scrubgate_overload_rejections_total", route="scrub", reason="buffered_bytes")
    async with aiohttp.ClientSession() as client:
        async with client.post(base + "/v1/t", json={"blob": "x" * 5000}) as response:
            assert response.status == 503
        async with client.post(base + "/v1/t", json={"blob": "x" * 1000}) as response:
            assert response.status == 200
    assert (
        sample("scrubgate_overload_rejections_total", route="scrub", reason="buffered_bytes")
        == before + 1
    )
    assert len(upstream.arrivals) == 1


async def test_a_slowloris_client_is_disconnected_and_nothing_is_forwarded(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    reader, writer = await asyncio.open_connection(*host_port(base))
    writer.write(b"POST /v1/t HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed = False
    # One header byte every 50 ms would keep a naive server waiting forever.
    while time.monotonic() - started < 10:
        try:
            writer.write(b"X")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1024), 0.05)
        except TimeoutError:
            continue
        except ConnectionError:
            closed = True
            break
        if data == b"":
            closed = True
            break
    writer.close()
    assert closed
    assert upstream.arrivals == []


async def test_a_body_that_stalls_gets_408(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    before = sample(
        "scrubgate_payload_errors_total", route="scrub", codec="http", reason="body_timeout"
    )
    reader, writer = await asyncio.open_connection(*host_port(base))
    writer.write(
        b"POST /v1/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"a":'
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(1024), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    assert upstream.arrivals == []
    assert (
        sample("scrubgate_payload_errors_total", route="scrub", codec="http", reason="body_timeout")
        == before + 1
    )


async def test_chunked_body_over_the_limit_on_a_forward_route_is_413_and_never_completes(
    start_proxy, upstream
):
    base = await start_proxy(
        """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
limits: {max_body_bytes: 1KiB}
routes: [{name: fwd, upstream: "{upstream}", category: traces, mode: forward}]
"""
    )

    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    async with aiohttp.ClientSession() as client:
        async with client.post(base + "/v1/traces", data=chunks()) as response:
            assert response.status == 413
        async with client.post(base + "/v1/traces", data=b"y" * 1000) as response:
            assert response.status == 200
    # The oversized body never reached the upstream as a complete request.
    assert [arrival.raw for arrival in upstream.arrivals] == [b"y" * 1000]


FORWARD_SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
limits: {client_body_timeout: 300ms, max_body_bytes: 8MiB}
routes: [{name: fwd, upstream: "{upstream}", category: traces, mode: forward}]
"""


async def test_a_forward_body_that_stalls_gets_408_and_nothing_reaches_the_upstream(
    start_proxy, upstream
):
    """Forward-mode bodies of up to 1 MiB are read whole before they are sent, so a
    client that stops half-way never leaves a half-sent request at the upstream."""
    base = await start_proxy(FORWARD_SETTINGS)
    reader, writer = await asyncio.open_connection(*host_port(base))
    writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    writer.write(b"z" * 2500)
    await writer.drain()
    head = await asyncio.wait_for(reader.read(1024), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    assert upstream.arrivals == []


async def test_forward_bodies_above_the_buffered_size_are_streamed_intact(start_proxy, upstream):
    base = await start_proxy(FORWARD_SETTINGS)
    small, large = bytes(range(256)) * 400, bytes(range(256)) * 12_000  # 100 KB, 3 MB
    async with aiohttp.ClientSession() as client:
        for body in (small, large):
            async with client.post(base + "/v1/traces", data=body) as response:
                assert response.status == 200
    assert [arrival.raw for arrival in upstream.arrivals] == [small, large]


def _config(tmp_path: Path, upstream_url: str, port: int, admin_port: int, drain: str) -> Path:
    config = tmp_path / "settings.yaml"
    config.write_text(
        f"""
version: 1
listeners: [{{name: main, port: {port}}}]
admin: {{port: {admin_port}}}
hashing: {{key_env: E2E_HASH_KEY}}
limits: {{drain_timeout: {drain}, upstream_timeout: 10s}}
spool: {{directory: spool, retry_initial: 50ms, retry_max: 200ms}}
policies:
  p: {{rules: [{{id: redact, action: redact}}]}}
routes:
  - {{name: scrub, match: {{path_prefix: /v1}}, upstream: "{upstream_url}", category: analytics, policy: p}}
"""
    )
    return config


async def test_sigterm_finishes_requests_in_flight_then_exits_0(upstream, tmp_path):
    upstream.delay = 1.0
    port, admin_port = free_port(), free_port()
    process = spawn_proxy(_config(tmp_path, upstream.url, port, admin_port, "10s"))
    await wait_ready(admin_port, process)
    async with aiohttp.ClientSession() as client:
        request = asyncio.create_task(client.post(f"http://127.0.0.1:{port}/v1/t", json={"n": 1}))
        while not upstream.arrivals:
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        with socket.socket() as probe:
            # No longer accepting: the listening socket is closed at once.
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        response = await request
        assert response.status == 200
        assert await response.json() == {"ok": True}
    assert await exit_code(process) == 0


async def test_requests_still_in_flight_at_the_drain_deadline_are_spooled(upstream, tmp_path):
    upstream.delay = 5.0
    port, admin_port = free_port(), free_port()
    config = _config(tmp_path, upstream.url, port, admin_port, "300ms")
    process = spawn_proxy(config)
    await wait_ready(admin_port, process)
    async with aiohttp.ClientSession() as client:
        request = asyncio.create_task(
            client.post(f"http://127.0.0.1:{port}/v1/t", json={"id": "late", "m": "a@example.com"})
        )
        while not upstream.arrivals:
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        assert await exit_code(process) == 0
        request.cancel()
    spooled = list((tmp_path / "spool").glob("worker-*/*.req"))
    assert len(spooled) == 1
    assert b"a@example.com" not in spooled[0].read_bytes()
    upstream.delay = 0
    upstream.arrivals.clear()
    process = spawn_proxy(config)
    try:
        await wait_ready(admin_port, process)
        deadline = time.monotonic() + 15
        while not upstream.arrivals and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [orjson.loads(arrival.body)["id"] for arrival in upstream.arrivals] == ["late"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert await exit_code(process) == 0
