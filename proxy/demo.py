"""``scrubgate demo``: the proxy plus a local sink, showing what would leave the network.

The sink stands in for the vendor: it listens where ``config.example.yaml`` sends
telemetry (``127.0.0.1:9999``), decodes what arrives and prints it. The demo sends a few
sample requests through the proxy and prints each one before and after scrubbing.
Everything stays on loopback.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import secrets
import sys
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web

from proxy.codecs.base import CodecLimits
from proxy.codecs.encoding import decode_content
from proxy.server import ScrubgateServer
from proxy.settings import SettingsError
from proxy.state import SettingsHolder

FEEDBACK = {
    "userId": "u-1842",
    "rating": 2,
    "comment": "Export fails for jane.doe@example.com, call me on +44 20 7946 0958. "
    "Token was password=hunter2 and my card 4111 1111 1111 1111.",
    "page": "https://jira.corp.example.net/browse/OPS-12?session=abc123",
    "contact": {"email": "jane.doe@example.com", "ip": "192.0.2.77"},
}

BATCH = {
    "batch": [
        {
            "type": "track",
            "event": "Report Exported",
            "userId": "user_7752136",
            "anonymousId": "20a56229-9c33-4f3d-a09d-a72e5d4b748f",
            "properties": {"format": "pdf", "rows": 1200, "note": "sent to bob@corp.example.net"},
            "context": {
                "ip": "198.51.100.23",
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
                "page": {
                    "url": "https://app.example.com/reports?id=42&email=jane.doe@example.com&utm_source=mail",
                    "referrer": "https://intranet.corp.example.net/home",
                },
                "traits": {"email": "jane.doe@example.com", "name": "Jane Doe"},
            },
            "timestamp": "2026-11-25T10:30:00.123Z",
        }
    ],
    "sentAt": "2026-11-25T10:30:01.000Z",
    "writeKey": "wk_demo",
}


async def run_demo(config: str, *, once: bool) -> int:
    """Start sink and proxy, send the samples, then keep serving unless ``once``."""
    environ = dict(os.environ)
    if not environ.get("SCRUBGATE_HASH_KEY") and not environ.get("SCRUBGATE_HASH_KEY_FILE"):
        environ["SCRUBGATE_HASH_KEY"] = secrets.token_hex(32)
        print("demo: no SCRUBGATE_HASH_KEY set, using a random key for this run only\n")
    try:
        holder = SettingsHolder(config, environ)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 1
    sink = await _start_sink(holder)
    server = ScrubgateServer(holder)
    await server.start()
    proxy_url = f"http://127.0.0.1:{server.bound[holder.current.settings.listeners[0].name]}"
    try:
        await _send_samples(proxy_url, sink)
        if not once:
            print(f"\nscrubgate is listening on {proxy_url}; the sink prints what arrives.")
            print("Ctrl-C to stop.")
            await _print_arrivals(sink)
    finally:
        await server.stop()
        await sink.cleanup()
    return 0


class _Sink:
    def __init__(self) -> None:
        self.arrivals: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.runner: web.AppRunner | None = None

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        decoded, _ = decode_content(body, request.headers.get("Content-Encoding"), CodecLimits())
        await self.arrivals.put((request.path_qs, decoded))
        return web.json_response({"success": True})

    async def cleanup(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def _start_sink(holder: SettingsHolder) -> _Sink:
    upstream = urlsplit(holder.current.settings.routes[0].upstream)
    sink = _Sink()
    app = web.Application(client_max_size=64 * 2**20, handler_args={"auto_decompress": False})
    app.router.add_route("*", "/{tail:.*}", sink.receive)
    sink.runner = web.AppRunner(app, access_log=None)
    await sink.runner.setup()
    await web.TCPSite(sink.runner, upstream.hostname, upstream.port).start()
    return sink


async def _print_arrivals(sink: _Sink) -> None:
    while True:
        path, body = await sink.arrivals.get()
        print(f"--- arrived at the vendor ({path}):")
        print(body.decode("utf-8", "replace"))


async def _send_samples(proxy_url: str, sink: _Sink) -> None:
    samples = [
        ("POST", "/feedback", FEEDBACK, {}),
        ("POST", "/v1/batch", BATCH, {"Content-Encoding": "gzip"}),
    ]
    async with aiohttp.ClientSession() as session:
        for method, path, payload, headers in samples:
            raw = orjson.dumps(payload)
            body = gzip.compress(raw) if headers.get("Content-Encoding") == "gzip" else raw
            async with session.request(
                method,
                proxy_url + path,
                data=body,
                headers={"Content-Type": "application/json", **headers},
            ) as response:
                status = response.status
            print(
                f"=== {method} {path} ({'gzip' if headers else 'plain'}) → proxy answered {status}"
            )
            print("--- sent by the product:")
            print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
            arrived_path, arrived = await asyncio.wait_for(sink.arrivals.get(), timeout=10)
            print(f"--- arrived at the vendor ({arrived_path}):")
            print(orjson.dumps(orjson.loads(arrived), option=orjson.OPT_INDENT_2).decode())
            print()
