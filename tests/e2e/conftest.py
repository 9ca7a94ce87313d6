"""End-to-end fixtures: a real recording upstream and a real scrubgate, both on 127.0.0.1.

The upstream decodes what arrives with the standard libraries (gzip, zlib, brotli,
zstandard), independently of scrubgate's own codecs, so a test sees exactly what the
vendor would see.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import pytest
import zstandard
from aiohttp import web

from proxy.server import ScrubgateServer
from proxy.state import SettingsHolder

HASH_KEY = "e2e-test-hash-key-0123456789abcdef"


@dataclass
class Arrival:
    method: str
    path_qs: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> bytes:
        """The body with every Content-Encoding layer undone, independently of scrubgate."""
        data = self.raw
        encodings = [
            token.strip()
            for token in self.headers.get("Content-Encoding", "").split(",")
            if token.strip()
        ]
        for encoding in reversed(encodings):
            if encoding in ("gzip", "x-gzip"):
                data = gzip.decompress(data)
            elif encoding == "deflate":
                data = zlib.decompress(data)
            elif encoding == "br":
                data = brotli.decompress(data)
            elif encoding == "zstd":
                data = zstandard.ZstdDecompressor().decompress(data, max_output_size=64 * 2**20)
        return data


@dataclass
class Upstream:
    """A recording stand-in for the vendor's endpoint."""

    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    status: int = 200
    reply: bytes = b'{"ok":true}'
    reply_headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/json"}
    )

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.arrivals.append(Arrival(request.method, request.path_qs, dict(request.headers), raw))
        return web.Response(status=self.status, body=self.reply, headers=self.reply_headers)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    recorder = Upstream()
    # The recorder must see the raw bytes on the wire: no automatic decompression.
    app = web.Application(client_max_size=256 * 2**20, handler_args={"auto_decompress": False})
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder.url = f"http://127.0.0.1:{port}"
    yield recorder
    await runner.cleanup()


@pytest.fixture
async def start_proxy(tmp_path: Path, upstream: Upstream):
    """``await start_proxy(settings_yaml)`` → base URL of a running scrubgate. The YAML may
    use ``{upstream}`` for the recording upstream's URL."""
    servers: list[ScrubgateServer] = []

    async def start(settings: str) -> str:
        path = tmp_path / f"settings{len(servers)}.yaml"
        path.write_text(settings.replace("{upstream}", upstream.url))
        holder = SettingsHolder(
            str(path), {"SCRUBGATE_HASH_KEY": HASH_KEY, "E2E_HASH_KEY": HASH_KEY}
        )
        server = ScrubgateServer(holder)
        await server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.bound[holder.current.settings.listeners[0].name]}"

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def example_settings() -> str:
    """config.example.yaml with every upstream pointed at the recording upstream and
    ephemeral ports."""
    text = (Path(__file__).parent.parent.parent / "config.example.yaml").read_text()
    return (
        text.replace("${SCRUBGATE_UPSTREAM:-http://127.0.0.1:9999}", "{upstream}")
        .replace("${SCRUBGATE_PORT:-8080}", "0")
        .replace("${SCRUBGATE_ADMIN_PORT:-9090}", "0")
    )
