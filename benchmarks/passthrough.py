"""The baseline: a plain aiohttp proxy that relays request and response, no parsing.

    python -m benchmarks.passthrough --port PORT --upstream URL [--loop asyncio|uvloop]

:func:`make_app` also takes a body transform, which is how ``roundtrip.py`` builds the
parse-and-serialize baseline on the same relay.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web

Transform = Callable[[bytes, str | None], bytes]
"""Request body and its Content-Encoding → the body to forward."""


def make_app(upstream: str, transform: Transform | None = None) -> web.Application:
    session: aiohttp.ClientSession | None = None

    async def start(_app: web.Application) -> None:
        nonlocal session
        session = aiohttp.ClientSession(auto_decompress=False)

    async def stop(_app: web.Application) -> None:
        if session is not None:
            await session.close()

    async def relay(request: web.Request) -> web.Response:
        assert session is not None
        body = await request.read()
        if transform is not None:
            body = transform(body, request.headers.get("Content-Encoding"))
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in ("host", "content-length")
        }
        async with session.request(
            request.method, upstream + request.path_qs, data=body, headers=headers
        ) as response:
            return web.Response(
                status=response.status,
                body=await response.read(),
                headers={"Content-Type": response.content_type},
            )

    app = web.Application(client_max_size=64 * 2**20, handler_args={"auto_decompress": False})
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


async def serve(app: web.Application, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` until the process is terminated."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def run(transform: Transform | None = None) -> None:
    """Parse the command line and serve the relay on the chosen event loop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the sink")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    main = serve(make_app(args.upstream, transform), args.port)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


if __name__ == "__main__":
    run()
