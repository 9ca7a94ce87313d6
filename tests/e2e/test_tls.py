"""TLS end to end: HTTPS listeners (certificates reloaded with the settings) and verified
HTTPS upstreams with a CA bundle, using trustme-generated CAs on 127.0.0.1."""

import ssl

import aiohttp
import orjson
import pytest
import trustme
from aiohttp import web

from proxy.server import ScrubgateServer
from proxy.state import SettingsHolder

SETTINGS = """
version: 1
listeners:
  - name: main
    host: 127.0.0.1
    port: 0
    tls: {{cert_file: server.pem, key_file: server.key}}
admin: {{port: 0}}
policies:
  p:
    rules: [{{id: redact, action: redact}}]
routes:
  - name: r
    upstream: "{upstream}"
    category: feedback
    policy: p
    {ca_line}
"""


def _write_server_cert(ca: trustme.CA, directory) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(directory / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    for extra in cert.cert_chain_pems[1:]:
        with open(directory / "server.pem", "ab") as chain:
            chain.write(extra.bytes())


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def _start(tmp_path, upstream_url: str, ca_line: str = ""):
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.format(upstream=upstream_url, ca_line=ca_line))
    holder = SettingsHolder(str(path), {})
    server = ScrubgateServer(holder)
    await server.start()
    return holder, server, f"https://127.0.0.1:{server.bound['main']}"


async def test_https_listener_serves_and_reloads_its_certificate(tmp_path, upstream):
    first, second = trustme.CA(), trustme.CA()
    _write_server_cert(first, tmp_path)
    holder, server, base = await _start(tmp_path, upstream.url)
    try:
        async with aiohttp.ClientSession() as client:
            async with client.post(
                base + "/x", json={"m": "a@example.com"}, ssl=_client_context(first)
            ) as response:
                assert response.status == 200
            assert orjson.loads(upstream.arrivals[0].body) == {"m": "[email]"}
            _write_server_cert(second, tmp_path)
            assert holder.reload().ok
        async with aiohttp.ClientSession() as client:
            async with client.post(base + "/x", json={}, ssl=_client_context(second)) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await client.post(base + "/x", json={}, ssl=_client_context(first))
    finally:
        await server.stop()


@pytest.fixture
async def https_upstream(tmp_path):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "upstream-ca.pem"))
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{site._server.sockets[0].getsockname()[1]}", received
    await runner.cleanup()


async def test_https_upstream_is_verified_with_the_route_ca_bundle(tmp_path, https_upstream):
    url, received = https_upstream
    listener_ca = trustme.CA()
    _write_server_cert(listener_ca, tmp_path)
    _, server, base = await _start(tmp_path, url, ca_line="tls_ca_file: upstream-ca.pem")
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                base + "/x", json={"m": "a@example.com"}, ssl=_client_context(listener_ca)
            ) as response,
        ):
            assert response.status == 200
        assert orjson.loads(received[0]) == {"m": "[email]"}
    finally:
        await server.stop()


async def test_unverifiable_https_upstream_is_502_and_nothing_is_sent(tmp_path, https_upstream):
    url, received = https_upstream
    listener_ca = trustme.CA()
    _write_server_cert(listener_ca, tmp_path)
    _, server, base = await _start(tmp_path, url)
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.post(base + "/x", json={"m": 1}, ssl=_client_context(listener_ca)) as response,
        ):
            assert response.status == 502
        assert received == []
    finally:
        await server.stop()
