"""proxy/forward_proxy.py: allowlist matching and request-target parsing, then the
forward-proxy listener's connection handling on 127.0.0.1 (idle and head timeouts,
limits, shutdown, reload). tests/e2e/test_forward_proxy.py covers the traffic itself."""

import asyncio
import socket

import pytest
import trustme

from proxy import metrics
from proxy.forward_proxy import (
    find_destination,
    parse_connect_head,
    parse_connect_target,
    split_absolute_form,
)
from proxy.server import ScrubgateServer
from proxy.settings import Destination
from proxy.state import SettingsHolder

ALLOWLIST = (
    Destination("api.vendor.test", 443, "intercept"),
    Destination("*.cdn.test", 443, "tunnel"),
    Destination("*.vendor.test", 443, "tunnel"),
    Destination("10.0.0.1", 8443, "tunnel"),
    Destination("::1", 443, "tunnel"),
)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("api.vendor.test", 443, "api.vendor.test:443"),
        ("x.vendor.test", 443, "*.vendor.test:443"),
        ("a.b.cdn.test", 443, "*.cdn.test:443"),
        ("cdn.test", 443, None),
        ("evilcdn.test", 443, None),
        ("api.vendor.test", 8443, None),
        ("10.0.0.1", 8443, "10.0.0.1:8443"),
        ("10.0.0.1", 443, None),
        ("::1", 443, "[::1]:443"),
    ],
)
def test_the_first_matching_allowlist_entry_wins(host, port, expected):
    destination = find_destination(ALLOWLIST, host, port)
    assert (destination.label if destination else None) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("Vendor.Test:443", ("vendor.test", 443)),
        ("127.0.0.1:8443", ("127.0.0.1", 8443)),
        ("[::1]:443", ("::1", 443)),
        ("vendor.test", None),
        ("*.vendor.test:443", None),
        ("user@vendor.test:443", None),
        ("vendor.test:99999", None),
        ("vendor.test:443/path", None),
        ("[::1]", None),
        ("", None),
    ],
)
def test_connect_targets_must_be_a_plain_host_and_port(target, expected):
    assert parse_connect_target(target) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://Vendor.Test/v1/track?x=1", ("vendor.test", "/v1/track?x=1")),
        ("http://vendor.test:8080/a%2Fb", ("vendor.test", "/a%2Fb")),
        ("http://vendor.test", ("vendor.test", "/")),
        ("http://vendor.test?x=1", ("vendor.test", "/?x=1")),
        ("http://[::1]:80/x", ("::1", "/x")),
        ("/v1/track", None),
        ("https://vendor.test/x", None),
        ("http://user:pw@vendor.test/x", None),
        ("http:///x", None),
        ("http://[/x", None),
    ],
)
def test_absolute_form_targets_split_into_host_and_origin_form(target, expected):
    assert split_absolute_form(target) == expected


def test_connect_heads_need_method_target_and_version():
    assert parse_connect_head(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443") == "a.test:443"
    assert parse_connect_head(b"CONNECT a.test:443 HTTP/2\r\n") is None
    assert parse_connect_head(b"CONNECT  a.test:443 HTTP/1.1") is None


# --- the listener on 127.0.0.1 -----------------------------------------------------------

SETTINGS = """
version: 1
listeners: [{name: egress, port: 0}, {name: main, port: 0}]
admin: {port: 0}
forward_proxy:
  listener: egress
  idle_timeout: IDLE_TIMEOUT
  max_tunnels: 1
  ca_cert_file: ca.pem
  ca_key_file: ca.key
  destinations:
    - {destination: "127.0.0.1:SILENT_PORT", action: tunnel}
    - {destination: "127.0.0.1:CLOSED_PORT", action: tunnel}
    - {destination: "intercepted.test", action: intercept}
routes:
  - {name: r, match: {host: routed.test}, upstream: "http://127.0.0.1:CLOSED_PORT", category: analytics, mode: drop}
"""


@pytest.fixture
async def silent_port():
    """A TCP server that accepts connections and never says anything."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def start(tmp_path, silent_port, closed_port):
    """``await start(idle_timeout)`` → a running scrubgate with ``SETTINGS``."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.private_key_pem.write_to_path(str(tmp_path / "ca.key"))
    servers: list[ScrubgateServer] = []

    async def start_server(idle_timeout: str) -> ScrubgateServer:
        path = tmp_path / "settings.yaml"
        path.write_text(
            SETTINGS.replace("SILENT_PORT", str(silent_port))
            .replace("CLOSED_PORT", str(closed_port))
            .replace("IDLE_TIMEOUT", idle_timeout)
        )
        server = ScrubgateServer(SettingsHolder(str(path), {}))
        await server.start()
        servers.append(server)
        return server

    yield start_server
    for server in servers:
        await server.stop()


@pytest.fixture
async def proxy(start) -> ScrubgateServer:
    """Timeouts long enough never to matter in a test."""
    return await start("3600s")


async def _open(server: ScrubgateServer, listener: str = "egress"):
    return await asyncio.open_connection("127.0.0.1", server.bound[listener])


async def _connect(server: ScrubgateServer, target: str, extra: bytes = b""):
    reader, writer = await _open(server)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode() + extra)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    return int(head.split(b" ", 2)[1]), reader, writer


async def _closed_by_proxy(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), timeout=10) == b""


def _outcomes(outcome: str, destination: str) -> float:
    labels = {"listener": "egress", "destination": destination, "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("scrubgate_connect_requests_total", labels) or 0.0


async def test_an_idle_tunnel_is_closed_and_no_longer_counted_open(start, silent_port):
    proxy = await start("100ms")
    open_before = metrics.REGISTRY.get_sample_value("scrubgate_open_tunnels")
    status, reader, writer = await _connect(proxy, f"127.0.0.1:{silent_port}")
    assert status == 200
    assert await _closed_by_proxy(reader)
    writer.close()
    assert metrics.REGISTRY.get_sample_value("scrubgate_open_tunnels") == open_before


async def test_a_connection_that_never_finishes_its_head_is_closed(start):
    proxy = await start("100ms")
    reader, writer = await _open(proxy)
    writer.write(b"CONN")
    assert await _closed_by_proxy(reader)
    writer.close()


async def test_an_oversized_connect_head_is_431(proxy):
    reader, writer = await _open(proxy)
    writer.write(b"CONNECT a.test:443 HTTP/1.1\r\nX-Pad: " + b"a" * 20000)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 431 ")


async def test_tunnels_beyond_max_tunnels_are_503(proxy, silent_port):
    target = f"127.0.0.1:{silent_port}"
    before = _outcomes("overloaded", target)
    status, _, first = await _connect(proxy, target)
    assert status == 200
    status, _, second = await _connect(proxy, target)
    first.close()
    second.close()
    assert status == 503
    assert _outcomes("overloaded", target) == before + 1


async def test_an_unreachable_destination_is_502(proxy, closed_port):
    target = f"127.0.0.1:{closed_port}"
    before = _outcomes("failed", target)
    status, _, writer = await _connect(proxy, target)
    writer.close()
    assert status == 502
    assert _outcomes("failed", target) == before + 1


async def test_bytes_sent_before_the_200_are_refused_on_an_intercepted_destination(proxy):
    status, _, writer = await _connect(proxy, "intercepted.test:443", extra=b"\x16\x03\x01")
    writer.close()
    assert status == 400


async def test_stopping_the_server_closes_open_tunnels(proxy, silent_port):
    server = proxy
    status, reader, writer = await _connect(server, f"127.0.0.1:{silent_port}")
    assert status == 200
    await server.stop()
    assert await _closed_by_proxy(reader)
    writer.close()


async def test_connect_after_a_plain_request_on_the_same_connection_is_403(proxy):
    """CONNECT must open its connection (as clients do): once aiohttp serves a connection,
    a CONNECT on it is refused."""
    reader, writer = await _open(proxy)
    writer.write(b"GET http://routed.test/x HTTP/1.1\r\nHost: routed.test\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    writer.write(b"CONNECT intercepted.test:443 HTTP/1.1\r\nHost: intercepted.test:443\r\n\r\n")
    second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    writer.close()
    assert first.startswith(b"HTTP/1.1 200 ")  # the route drops: answered, nothing sent
    assert second.startswith(b"HTTP/1.1 403 ")


async def test_reload_applies_the_new_allowlist_and_can_switch_the_mode_off(
    tmp_path, proxy, silent_port
):
    target = f"127.0.0.1:{silent_port}"
    path = tmp_path / "settings.yaml"
    path.write_text(path.read_text().replace(f'"{target}"', '"127.0.0.2:1"'))
    assert proxy.holder.reload().ok
    status, _, writer = await _connect(proxy, target)
    writer.close()
    assert status == 403
    text = path.read_text()
    path.write_text(text[: text.index("forward_proxy:")] + text[text.index("routes:") :])
    assert proxy.holder.reload().ok
    reader, writer = await _open(proxy)
    writer.write(
        b"GET http://routed.test/x HTTP/1.1\r\nHost: routed.test\r\nConnection: close\r\n\r\n"
    )
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 404 ")  # no longer routed by the target's host
