"""Header hygiene end to end, on the wire in both directions.

Requests are written byte for byte on a raw socket (so Connection, Keep-Alive, TE ... are
exactly what a client could send) and the recording upstream lists every header line it
got. Responses are read raw too, so nothing the client library would hide is missed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
import pytest

from tests.e2e.payloads import PREAMBLE

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = (
    PREAMBLE
    + """
routes:
  - {name: scrubbed, match: {path_prefix: /scrub}, upstream: "{upstream}", category: analytics, policy: p}
  - {name: forwarded, match: {path_prefix: /fwd}, upstream: "{upstream}", category: analytics, mode: forward}
  - name: ua-keep
    match: {path_prefix: /ua-keep}
    upstream: "{upstream}"
    category: analytics
    policy: p
    headers: {user_agent: keep}
  - name: ua-remove
    match: {path_prefix: /ua-remove}
    upstream: "{upstream}"
    category: analytics
    policy: p
    headers: {user_agent: remove}
  - name: keep-only
    match: {path_prefix: /keep-only}
    upstream: "{upstream}"
    category: analytics
    policy: p
    headers: {keep_only: [content-type, authorization, user-agent]}
"""
)

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.130 Safari/537.36"
)
BODY = orjson.dumps({"event": "Settings Saved", "plan": "pro"})

CLIENT_ADDRESS_HEADERS = [
    ("Cookie", "session=s3cr3t-session; theme=dark"),
    ("X-Forwarded-For", "198.51.100.7, 10.20.1.5"),
    ("X-Real-IP", "198.51.100.7"),
    ("Forwarded", "for=198.51.100.7;proto=https;by=10.20.1.1"),
    ("Referer", "https://intranet.corp.example.net/projects/secret-plan?user=jane"),
    ("Via", "1.1 corp-proxy.internal"),
]
HOP_BY_HOP_HEADERS = [
    ("Connection", "keep-alive, X-Custom-Hop"),
    ("X-Custom-Hop", "connection-scoped"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("TE", "trailers"),
    ("Trailer", "X-Checksum"),
    ("Proxy-Authorization", "Basic cHJveHk6cGFzcw=="),
    ("Proxy-Connection", "keep-alive"),
    ("Upgrade", "websocket"),
]
KEPT_HEADERS = [
    ("Authorization", "Bearer sk-e2e-kept-token"),
    ("X-Sentry-Auth", "Sentry sentry_key=public, sentry_version=7, sentry_client=e2e/1.0"),
    ("X-Api-Key", "api-key-kept-123"),
    ("X-Write-Key", "write-key-kept-456"),
    ("DD-API-KEY", "dd-kept-789"),
    ("Content-Type", "application/json"),
    ("Accept", "application/json"),
]


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_names(self) -> set[str]:
        return {name.lower() for name, _ in self.headers}

    def get(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


async def raw_request(
    base: str, path: str, headers: list[tuple[str, str]], body: bytes = BODY
) -> RawResponse:
    """One HTTP/1.1 request written exactly as given; the response read by its length."""
    address = urlsplit(base)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        lines = [f"POST {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        parsed = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        response = RawResponse(int(status_line.split(" ")[1]), parsed, b"")  # type: ignore[arg-type]
        length = int(response.get("Content-Length") or 0)
        response.body = await asyncio.wait_for(reader.readexactly(length), timeout=10)
        return response
    finally:
        writer.close()


@pytest.mark.parametrize("prefix", ["/scrub", "/fwd"], ids=["scrub-mode", "forward-mode"])
async def test_request_header_hygiene(proxy: str, vendor, prefix: str) -> None:
    sent = [
        ("Host", "telemetry.customer.example"),
        ("User-Agent", BROWSER_UA),
        *CLIENT_ADDRESS_HEADERS,
        *HOP_BY_HOP_HEADERS,
        *KEPT_HEADERS,
    ]
    response = await raw_request(proxy, prefix + "/v1/track", sent)
    assert response.status == 200

    (arrival,) = vendor.arrivals
    names = {name.lower() for name, _ in arrival.header_list}
    for name, _ in CLIENT_ADDRESS_HEADERS:
        assert name.lower() not in names, f"{name} was forwarded"
    for name, _ in HOP_BY_HOP_HEADERS:
        assert name.lower() not in names, f"hop-by-hop {name} was forwarded"
    assert "transfer-encoding" not in names
    received = dict(arrival.header_list)
    for name, value in KEPT_HEADERS:
        assert received.get(name) == value, f"{name} was not kept as sent"
    assert arrival.host == urlsplit(vendor.url).netloc
    assert [value for name, value in arrival.header_list if name.lower() == "host"] == [
        urlsplit(vendor.url).netloc
    ]
    assert int(received["Content-Length"]) == len(arrival.raw)
    assert orjson.loads(arrival.body)["plan"] == "pro"
    # The address values themselves must not have slipped through under another name.
    flat = "\n".join(f"{name}: {value}" for name, value in arrival.header_list)
    for secret in ("s3cr3t-session", "198.51.100.7", "secret-plan", "corp-proxy", "cHJveHk6"):
        assert secret not in flat


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("/scrub", "Chrome 120 / Windows"),
        ("/ua-keep", BROWSER_UA),
        ("/ua-remove", None),
    ],
    ids=["generalize-by-default", "keep", "remove"],
)
async def test_user_agent_per_route(proxy: str, vendor, prefix: str, expected: str | None) -> None:
    response = await raw_request(
        proxy,
        prefix + "/v1/track",
        [("Host", "x"), ("User-Agent", BROWSER_UA), ("Content-Type", "application/json")],
    )
    assert response.status == 200
    (arrival,) = vendor.arrivals
    user_agents = [value for name, value in arrival.header_list if name.lower() == "user-agent"]
    assert user_agents == ([] if expected is None else [expected])


@pytest.mark.parametrize("prefix", ["/scrub", "/fwd"], ids=["scrub-mode", "forward-mode"])
async def test_nothing_is_added_to_a_request_that_sends_only_what_it_must(
    proxy: str, vendor, prefix: str
) -> None:
    """No Accept, Accept-Encoding, User-Agent or Content-Type of the proxy's own: the
    vendor learns nothing the client did not send."""
    response = await raw_request(proxy, prefix + "/v1/track", [("Host", "x")])
    assert response.status == 200
    (arrival,) = vendor.arrivals
    assert sorted(name.lower() for name, _ in arrival.header_list) == ["content-length", "host"]
    assert orjson.loads(arrival.body)["plan"] == "pro"


async def test_keep_only_forwards_nothing_else(proxy: str, vendor) -> None:
    sent = [("Host", "x"), ("User-Agent", "sentry.python/2.75.0"), *KEPT_HEADERS, ("X-Debug", "1")]
    response = await raw_request(proxy, "/keep-only/v1/track", sent)
    assert response.status == 200
    (arrival,) = vendor.arrivals
    names = {name.lower() for name, _ in arrival.header_list}
    assert names == {"host", "content-length", "content-type", "authorization", "user-agent"}
    assert arrival.headers["Authorization"] == "Bearer sk-e2e-kept-token"
    assert arrival.headers["User-Agent"] == "sentry.python 2"


@pytest.mark.parametrize("prefix", ["/scrub", "/fwd"], ids=["scrub-mode", "forward-mode"])
async def test_response_headers_relayed_without_hop_by_hop(proxy: str, vendor, prefix: str) -> None:
    vendor.status = 201
    vendor.reply = b'{"id":"evt-1"}'
    vendor.reply_headers = {
        "Content-Type": "application/vnd.vendor+json",
        "X-Vendor-Request-Id": "req-42",
        "Cache-Control": "no-store",
        "Set-Cookie": "vendor-session=abc; Path=/",
        "Retry-After": "30",
        "X-Sentry-Rate-Limits": "60:error:organization",
        "Keep-Alive": "timeout=99",
        "Proxy-Authenticate": 'Basic realm="vendor"',
        "X-Upstream-Hop": "only-for-this-connection",
        "Connection": "X-Upstream-Hop",
    }
    response = await raw_request(
        proxy, prefix + "/v1/track", [("Host", "x"), ("Content-Type", "application/json")]
    )
    assert response.status == 201
    assert response.body == b'{"id":"evt-1"}'
    for name in (
        "Content-Type",
        "X-Vendor-Request-Id",
        "Cache-Control",
        "Set-Cookie",
        "Retry-After",
        "X-Sentry-Rate-Limits",
    ):
        assert response.get(name) == vendor.reply_headers[name], name
    assert response.get("Keep-Alive") != "timeout=99"
    names = response.header_names()
    assert "proxy-authenticate" not in names
    assert "x-upstream-hop" not in names
    assert response.get("Connection") in (None, "keep-alive", "close")
    assert int(response.get("Content-Length") or -1) == len(response.body)
