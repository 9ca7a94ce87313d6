"""End-to-end fixtures: a real recording upstream and a real scrubgate, both on 127.0.0.1.

The upstream decodes what arrives with the standard libraries (gzip, zlib, brotli,
zstandard), independently of scrubgate's own codecs, so a test sees exactly what the
vendor would see.

Function-scoped fixtures (``upstream``, ``start_proxy``) give every test a fresh pair.
Modules with many table-driven cases use the module-scoped pair (``module_upstream``,
``module_start_proxy``) so one settings file is compiled once per module; such modules
run their tests on the module's event loop (``pytest.mark.asyncio(loop_scope="module")``)
and call ``module_upstream.reset()`` (or use a fixture that does) before each test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from proxy.server import ScrubgateServer
from proxy.state import SettingsHolder
from tests.e2e.payloads import HASH_KEY, decode_layers


@dataclass
class Arrival:
    method: str
    path_qs: str
    headers: dict[str, str]
    raw: bytes
    header_list: list[tuple[str, str]] = field(default_factory=list)
    host: str = ""

    @property
    def body(self) -> bytes:
        """The body with every Content-Encoding layer undone, independently of scrubgate."""
        return decode_layers(self.raw, self.headers.get("Content-Encoding"))


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
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.arrivals.append(
            Arrival(
                request.method,
                request.path_qs,
                dict(request.headers),
                raw,
                list(request.headers.items()),
                request.host,
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, body=self.reply, headers=self.reply_headers)

    def reset(self) -> None:
        """Forget arrivals and restore the default answer (for a shared upstream)."""
        self.arrivals.clear()
        self.status = 200
        self.reply = b'{"ok":true}'
        self.reply_headers = {"Content-Type": "application/json"}


@contextlib.asynccontextmanager
async def recording_upstream(tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    """A recording upstream on 127.0.0.1; HTTPS when ``tls`` (a server context) is given."""
    recorder = Upstream()
    # The recorder must see the raw bytes on the wire: no automatic decompression.
    app = web.Application(client_max_size=256 * 2**20, handler_args={"auto_decompress": False})
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def proxy_launcher(
    directory: Path, upstream: Upstream
) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Yields ``start(settings_yaml) -> base URL``; every server started is stopped after."""
    servers: list[ScrubgateServer] = []

    async def start(settings: str) -> str:
        path = directory / f"settings{len(servers)}.yaml"
        path.write_text(settings.replace("{upstream}", upstream.url))
        holder = SettingsHolder(
            str(path), {"SCRUBGATE_HASH_KEY": HASH_KEY, "E2E_HASH_KEY": HASH_KEY}
        )
        server = ScrubgateServer(holder)
        await server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.bound[holder.current.settings.listeners[0].name]}"

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
async def start_proxy(tmp_path: Path, upstream: Upstream):
    """``await start_proxy(settings_yaml)`` → base URL of a running scrubgate. The YAML may
    use ``{upstream}`` for the recording upstream's URL."""
    async with proxy_launcher(tmp_path, upstream) as start:
        yield start


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_upstream() -> AsyncIterator[Upstream]:
    """One recording upstream for a whole module (call ``reset()`` between tests)."""
    async with recording_upstream() as recorder:
        yield recorder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_start_proxy(tmp_path_factory: pytest.TempPathFactory, module_upstream: Upstream):
    """Like ``start_proxy``, for module-scoped proxies that talk to ``module_upstream``."""
    async with proxy_launcher(tmp_path_factory.mktemp("settings"), module_upstream) as start:
        yield start


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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy(request: pytest.FixtureRequest, module_start_proxy) -> str:
    """A module-scoped scrubgate running the test module's ``SETTINGS``."""
    return await module_start_proxy(request.module.SETTINGS)


@pytest.fixture
def vendor(module_upstream: Upstream) -> Upstream:
    """The module's recording upstream, emptied before each test."""
    module_upstream.reset()
    return module_upstream
