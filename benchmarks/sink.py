"""The vendor side of the benchmark: answers every request ``200 {"success":true}``.

Written on bare asyncio protocols so that it costs little next to the proxies under test
(it shares a core with the load generator). With ``capture`` on, it keeps the last request
it received, headers and body, so the benchmark can check what a proxy forwarded.
"""

from __future__ import annotations

import asyncio
from typing import cast

from benchmarks.http1 import Message, MessageReader

_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"success":true}'
)


class Sink:
    """Counts requests; keeps the last one while ``capture`` is true."""

    def __init__(self) -> None:
        self.capture = False
        self.last: Message | None = None
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1") -> int:
        """Listen on an ephemeral port of ``host``; returns the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _SinkConnection(self), host, 0)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def received(self, message: Message) -> None:
        self.requests += 1
        if self.capture:
            self.last = message


class _SinkConnection(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._reader = MessageReader()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._reader.keep_body = self._sink.capture
        for message in self._reader.feed(data):
            self._sink.received(message)
            self._transport.write(_ANSWER)
