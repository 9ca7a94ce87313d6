"""Forward-proxy mode end to end: clients use scrubgate as their HTTP(S) proxy.

The vendor is a real HTTPS server on 127.0.0.1 whose certificate (from its own trustme CA)
names ``vendor.test``; the admin's CA (another trustme CA) signs what scrubgate mints when
it intercepts. Clients are aiohttp with ``proxy=`` and raw sockets.
"""

import asyncio
import os
import ssl

import aiohttp
import orjson
import pytest
import trustme

from proxy import metrics
from tests.e2e.conftest import recording_upstream
from tests.e2e.payloads import (
    EMAIL,
    POLICY,
    analytics_event,
    assert_no_canaries,
    check_analytics_event,
    leaked_canaries,
)

SETTINGS = (
    """
version: 1
listeners:
  - {name: egress, port: 0}
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
forward_proxy:
  listener: egress
  ca_cert_file: admin-ca.pem
  ca_key_file: admin-ca.key
  destinations:
    - {destination: vendor.test, action: intercept}
    - {destination: "*.cdn.test", action: intercept}
    - {destination: "127.0.0.1:VENDOR_PORT", action: tunnel}
    - {destination: "127.0.0.1:ECHO_PORT", action: tunnel}
"""
    + POLICY
    + """
routes:
  - name: vendor-https
    match: {host: vendor.test}
    upstream: "VENDOR_URL"
    tls_ca_file: vendor-ca.pem
    category: analytics
    policy: p
  - name: plain
    match: {host: plain.test}
    upstream: "{upstream}"
    category: analytics
    policy: p
"""
)


@pytest.fixture
def admin_ca(tmp_path) -> trustme.CA:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "admin-ca.pem"))
    ca.private_key_pem.write_to_path(str(tmp_path / "admin-ca.key"))
    return ca


@pytest.fixture
def vendor_ca(tmp_path) -> trustme.CA:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "vendor-ca.pem"))
    return ca


@pytest.fixture
async def vendor(vendor_ca):
    """The vendor's HTTPS endpoint; its certificate names vendor.test and 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    vendor_ca.issue_cert("vendor.test", "127.0.0.1").configure_cert(context)
    async with recording_upstream(context) as recorder:
        recorder.reply = b'{"accepted":1}'
        recorder.reply_headers = {"Content-Type": "application/json", "X-Vendor": "yes"}
        yield recorder


@pytest.fixture
async def echo():
    """A TCP server that answers everything it received, once the client half-closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def egress(start_proxy, admin_ca, vendor, echo) -> str:
    """The forward-proxy listener's URL."""
    port = vendor.url.rsplit(":", 1)[1]
    return await start_proxy(
        SETTINGS.replace("VENDOR_URL", vendor.url)
        .replace("VENDOR_PORT", port)
        .replace("ECHO_PORT", str(echo))
    )


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _connects(destination: str, outcome: str) -> float:
    labels = {"listener": "egress", "destination": destination, "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("scrubgate_connect_requests_total", labels) or 0.0


def _tunnel_bytes(destination: str, direction: str) -> float:
    labels = {"destination": destination, "direction": direction}
    return metrics.REGISTRY.get_sample_value("scrubgate_tunnel_bytes_total", labels) or 0.0


async def _raw_connect(
    proxy: str, target: bytes
) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """Send ``CONNECT target`` and return the answer head with the open stream."""
    host, port = proxy.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + target + b"\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    return head, reader, writer


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


async def test_intercepted_requests_are_scrubbed_and_answered_by_the_vendor(
    egress, admin_ca, vendor
):
    before = _connects("vendor.test:443", "intercepted")
    trust = _trusting(admin_ca)
    async with aiohttp.ClientSession() as client:
        for number in range(2):  # the second request reuses the intercepted connection
            async with client.post(
                "https://vendor.test/v1/track",
                json=analytics_event(number),
                proxy=egress,
                ssl=trust,
            ) as response:
                assert response.status == 200
                assert response.headers["X-Vendor"] == "yes"
                assert await response.read() == b'{"accepted":1}'
    assert len(vendor.arrivals) == 2
    for number, arrival in enumerate(vendor.arrivals):
        assert arrival.method == "POST" and arrival.path_qs == "/v1/track"
        assert_no_canaries(arrival.body)
        check_analytics_event(orjson.loads(arrival.body), number)
    assert _connects("vendor.test:443", "intercepted") == before + 1


async def test_client_that_does_not_trust_the_admin_ca_gets_no_connection(
    egress, vendor_ca, vendor
):
    before = _connects("vendor.test:443", "failed")
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientSSLError):
            await client.post(
                "https://vendor.test/v1/track",
                json=analytics_event(),
                proxy=egress,
                ssl=_trusting(vendor_ca),
            )
    assert vendor.arrivals == []
    for _ in range(100):  # the proxy counts once its side of the handshake has failed
        if _connects("vendor.test:443", "failed") == before + 1:
            break
        await asyncio.sleep(0.01)
    assert _connects("vendor.test:443", "failed") == before + 1


async def test_tunnel_carries_tls_from_the_client_to_the_vendor_untouched(
    egress, vendor_ca, vendor
):
    """The client verifies the vendor's own certificate, so scrubgate saw only ciphertext;
    nothing is scrubbed on a tunnel."""
    destination = "127.0.0.1:" + vendor.url.rsplit(":", 1)[1]
    outbound = _tunnel_bytes(destination, "outbound")
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            vendor.url + "/v1/track",
            json={"email": EMAIL},
            proxy=egress,
            ssl=_trusting(vendor_ca),
        ) as response,
    ):
        assert response.status == 200
        assert await response.read() == b'{"accepted":1}'
    (arrival,) = vendor.arrivals
    assert leaked_canaries(arrival.body) == ["email"]
    assert _connects(destination, "tunnelled") >= 1
    assert _tunnel_bytes(destination, "outbound") > outbound + len(arrival.body)


async def test_tunnel_relays_every_byte_both_ways_and_passes_half_close_on(egress, echo):
    destination = f"127.0.0.1:{echo}"
    outbound, inbound = (
        _tunnel_bytes(destination, "outbound"),
        _tunnel_bytes(destination, "inbound"),
    )
    payload = os.urandom(3 * 2**20)
    head, reader, writer = await _raw_connect(egress, destination.encode())
    assert _status(head) == 200
    writer.write(payload)
    await writer.drain()
    writer.write_eof()
    echoed = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    assert echoed == payload
    assert _tunnel_bytes(destination, "outbound") == outbound + len(payload)
    assert _tunnel_bytes(destination, "inbound") == inbound + len(payload)


@pytest.mark.parametrize(
    "target",
    [b"evil.test:443", b"vendor.test:8443", b"sub.vendor.test:443", b"127.0.0.1:1"],
    ids=["other-host", "other-port", "subdomain-of-exact-entry", "unlisted-loopback-port"],
)
async def test_connect_to_a_destination_not_on_the_allowlist_is_403(egress, vendor, target):
    before = _connects("-", "refused")
    head, _, writer = await _raw_connect(egress, target)
    writer.close()
    assert _status(head) == 403
    assert _connects("-", "refused") == before + 1
    assert vendor.arrivals == []


async def test_connect_without_a_port_is_400(egress):
    head, _, writer = await _raw_connect(egress, b"vendor.test")
    writer.close()
    assert _status(head) == 400


async def test_plain_http_absolute_form_is_routed_by_host_and_scrubbed(egress, upstream):
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            "http://plain.test/v1/track?source=proxy", json=analytics_event(), proxy=egress
        ) as response,
    ):
        assert response.status == 200
    (arrival,) = upstream.arrivals
    assert arrival.path_qs == "/v1/track?source=proxy"
    assert_no_canaries(arrival.body)
    check_analytics_event(orjson.loads(arrival.body))


async def test_plain_http_to_a_host_without_a_route_is_403_and_counted(egress, upstream, vendor):
    labels = {"listener": "egress"}
    before = metrics.REGISTRY.get_sample_value("scrubgate_unrouted_requests_total", labels) or 0
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            "http://elsewhere.test/v1/track", json={"email": EMAIL}, proxy=egress
        ) as response,
    ):
        assert response.status == 403
    assert upstream.arrivals == [] and vendor.arrivals == []
    assert metrics.REGISTRY.get_sample_value("scrubgate_unrouted_requests_total", labels) == (
        before + 1
    )


async def _intercepted_exchange(
    proxy: str, connect_host: str, ca: trustme.CA, request: bytes
) -> bytes:
    """CONNECT, TLS as ``connect_host`` trusting ``ca``, send ``request``, read the answer."""
    head, reader, writer = await _raw_connect(proxy, f"{connect_host}:443".encode())
    assert _status(head) == 200
    await writer.start_tls(_trusting(ca), server_hostname=connect_host)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    return answer


async def test_intercepted_requests_are_routed_by_the_connect_host_not_their_host_header(
    egress, admin_ca, vendor, upstream
):
    body = orjson.dumps({"email": EMAIL})
    answer = await _intercepted_exchange(
        egress,
        "vendor.test",
        admin_ca,
        b"POST /v1/track HTTP/1.1\r\nHost: plain.test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body),
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"accepted":1}')
    assert upstream.arrivals == []
    (arrival,) = vendor.arrivals
    assert orjson.loads(arrival.body) == {"email": "[email]"}


async def test_intercepted_host_without_a_route_is_403(egress, admin_ca, vendor, upstream):
    """*.cdn.test may be intercepted, but no route names a.cdn.test: nothing leaves."""
    answer = await _intercepted_exchange(
        egress,
        "a.cdn.test",
        admin_ca,
        b"GET /v1/track HTTP/1.1\r\nHost: vendor.test\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert vendor.arrivals == [] and upstream.arrivals == []
