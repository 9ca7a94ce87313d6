"""The baseline: a plain aiohttp proxy that relays request and response, no parsing.

python -m benchmarks.passthrough PORT UPSTREAM_URL
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web


async def make_app(upstream: str) -> web.Application:
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


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2]
    web.run_app(make_app(upstream), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
