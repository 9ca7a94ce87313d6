"""No open relay and header limits, with raw HTTP on a socket (clients normalize too much)."""

import asyncio
import re

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


# --- request framing attacks: refused, never smuggled ----------------------------------

FRAMING_SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
policies:
  p: {rules: [{id: redact, action: redact}]}
routes:
  - {name: fwd, match: {path_prefix: /collect}, upstream: "{upstream}", category: analytics, mode: forward}
  - {name: scrub, match: {path_prefix: /scrub}, upstream: "{upstream}", category: analytics, policy: p}
"""

SMUGGLED = b"GET /collect/smuggled HTTP/1.1\r\nHost: p\r\n\r\n"
CHUNKED_THEN_SMUGGLED = b"0\r\n\r\n" + SMUGGLED

# id -> the request after its request line (headers, blank line, body)
FRAMING_ATTACKS: dict[str, bytes] = {
    "content-length-and-chunked": (
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(CHUNKED_THEN_SMUGGLED)
        + CHUNKED_THEN_SMUGGLED
    ),
    "chunked-and-content-length": (
        b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + CHUNKED_THEN_SMUGGLED
    ),
    "two-different-content-lengths": (
        b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n{}" % (2 + len(SMUGGLED)) + SMUGGLED
    ),
    "content-length-list": b"Content-Length: 2, %d\r\n\r\n{}" % (2 + len(SMUGGLED)) + SMUGGLED,
    "chunked-then-identity": (
        b"Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n" + CHUNKED_THEN_SMUGGLED
    ),
    "two-transfer-encoding-headers": (
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + CHUNKED_THEN_SMUGGLED
    ),
    "unknown-transfer-encoding": b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED_THEN_SMUGGLED,
    "transfer-encoding-obs-fold": (
        b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n" + CHUNKED_THEN_SMUGGLED
    ),
    "content-length-obs-fold": b"Content-Length: 2\r\n 0\r\n\r\n{}" + SMUGGLED,
    "space-before-colon": b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED_THEN_SMUGGLED,
    "signed-content-length": b"Content-Length: +2\r\n\r\n{}" + SMUGGLED,
    "hex-chunk-size-prefix": b"Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n",
    "bare-lf-line-endings": (
        b"Transfer-Encoding: chunked\nContent-Length: 4\n\n" + CHUNKED_THEN_SMUGGLED
    ),
    "nul-in-header-value": b"X-Note: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
}


async def _exchange(base: str, request: bytes) -> bytes:
    """Send raw bytes; return everything the proxy answers until it closes (or 5 s)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout=5):
            received += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
    return received


@pytest.mark.parametrize("prefix", [b"/collect/x", b"/scrub/x"], ids=["forward", "scrub"])
@pytest.mark.parametrize("attack", sorted(FRAMING_ATTACKS))
async def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(
    start_proxy, upstream, prefix, attack
):
    base = await start_proxy(FRAMING_SETTINGS)
    request = b"POST " + prefix + b" HTTP/1.1\r\nHost: p\r\n" + FRAMING_ATTACKS[attack]
    answer = await _exchange(base, request)
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]
    assert all("smuggled" not in arrival.path_qs for arrival in upstream.arrivals)
    if upstream.arrivals:
        # Accepted as one well-framed request: sent on exactly once.
        assert len(upstream.arrivals) == 1 and statuses[:1] == [200]
    else:
        assert not statuses or 400 <= statuses[0] < 500


@pytest.mark.parametrize("prefix", [b"/collect/x", b"/scrub/x"], ids=["forward", "scrub"])
async def test_well_framed_request_on_the_same_harness_goes_through_once(
    start_proxy, upstream, prefix
):
    """The control for the attacks above: the same raw exchange, framed correctly."""
    base = await start_proxy(FRAMING_SETTINGS)
    request = b"POST " + prefix + b" HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\n"
    answer = await _exchange(base, request + b"Connection: close\r\n\r\n{}")
    assert re.match(rb"HTTP/1\.1 200 ", answer)
    assert [arrival.path_qs for arrival in upstream.arrivals] == [prefix.decode()]
