"""No open relay and header limits, with raw HTTP on a socket (clients normalize too much)."""

import asyncio

import pytest

from proxy import metrics

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
limits: {max_header_count: 20, max_header_bytes: 1KiB}
routes:
  - {name: only, match: {path_prefix: /collect}, upstream: "{upstream}", category: analytics, mode: forward}
"""


async def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), timeout=10)
    finally:
        writer.close()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET http://evil.example.com/collect HTTP/1.1",
        b"GET http://127.0.0.1:1/collect HTTP/1.1",
        b"CONNECT evil.example.com:443 HTTP/1.1",
        b"GET //evil.example.com/collect HTTP/1.1",
        b"GET /collect/../admin HTTP/1.1",
        b"GET /collect/%2e%2e/admin HTTP/1.1",
    ],
    ids=[
        "absolute-form",
        "absolute-form-loopback",
        "connect",
        "scheme-relative",
        "dot-dot",
        "encoded-dot-dot",
    ],
)
async def test_requests_for_other_destinations_are_refused(start_proxy, upstream, request_line):
    base = await start_proxy(SETTINGS)
    response = await _raw(
        base, request_line + b"\r\nHost: evil.example.com\r\nConnection: close\r\n\r\n"
    )
    assert _status(response) in (400, 403, 404)
    assert upstream.arrivals == []


async def test_connect_on_a_reverse_listener_is_403_and_counted(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    labels = {"listener": "main", "destination": "-", "outcome": "refused"}
    before = metrics.REGISTRY.get_sample_value("scrubgate_connect_requests_total", labels) or 0
    response = await _raw(
        base, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\nnot a tunnel"
    )
    assert _status(response) == 403
    assert metrics.REGISTRY.get_sample_value("scrubgate_connect_requests_total", labels) == (
        before + 1
    )
    assert upstream.arrivals == []


async def test_host_header_does_not_choose_the_destination(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    response = await _raw(
        base, b"GET /collect/x HTTP/1.1\r\nHost: evil.example.com\r\nConnection: close\r\n\r\n"
    )
    assert _status(response) == 200
    (arrival,) = upstream.arrivals
    assert arrival.headers["Host"] == upstream.url.removeprefix("http://")


async def test_too_many_headers_is_431_and_not_forwarded(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    headers = b"".join(b"X-Extra-%d: v\r\n" % number for number in range(30))
    response = await _raw(
        base, b"GET /collect/x HTTP/1.1\r\nHost: p\r\n" + headers + b"Connection: close\r\n\r\n"
    )
    assert _status(response) == 431
    assert upstream.arrivals == []


async def test_oversized_header_is_refused_and_not_forwarded(start_proxy, upstream):
    base = await start_proxy(SETTINGS)
    response = await _raw(
        base,
        b"GET /collect/x HTTP/1.1\r\nHost: p\r\nX-Big: "
        + b"a" * 4096
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert _status(response) in (400, 431)
    assert upstream.arrivals == []
