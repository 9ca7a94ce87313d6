"""The bundled load generator, used when ``wrk`` is not installed and for constant-rate runs.

    python -m benchmarks.loadgen URL --body FILE [--body FILE ...] [--header 'Name: value']
        --connections N --duration SECONDS [--rate PER_SECOND]

Prints one JSON object: requests, errors, elapsed seconds and latency percentiles (ms).

Closed loop (no ``--rate``): N keep-alive connections, each sending the next request as
soon as the previous answer is complete. Open loop (``--rate``): requests are scheduled
at a fixed rate and sent on whichever of the N connections is idle; latency is measured
from the *scheduled* time, so a stalled proxy shows up as queueing latency instead of as
fewer requests (no coordinated omission).

It runs in its own process on bare asyncio protocols (uvloop when installed), with the
whole request -- head and body -- built once, so it is not what limits the rate. Several
bodies are sent in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from benchmarks.http1 import MessageReader

T = TypeVar("T")


@dataclass(slots=True)
class Tally:
    """Latencies (seconds) of answered requests and the count of failed ones."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, latency: float, status: int) -> None:
        if status == 200:
            self.latencies.append(latency)
        else:
            self.errors += 1

    def summary(self, elapsed: float) -> dict[str, object]:
        ordered = sorted(self.latencies)

        def at(fraction: float) -> float:
            if not ordered:
                return 0.0
            return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000

        return {
            "requests": len(ordered),
            "errors": self.errors,
            "elapsed": elapsed,
            "latency_ms": {
                "p50": at(0.50),
                "p90": at(0.90),
                "p99": at(0.99),
                "p999": at(0.999),
                "max": at(1.0),
            },
        }


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self._reader = MessageReader()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        for message in self._reader.feed(data):
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(message.status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the server closed the connection"))

    async def exchange(self, request: bytes) -> int:
        """Send the request; returns the status of the answer."""
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def build_request(url: str, body: bytes, headers: list[str]) -> bytes:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"POST {path or '/'} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def connect(url: str, count: int) -> list[Connection]:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(count):
        _, protocol = await loop.create_connection(Connection, parts.hostname, parts.port or 80)
        connections.append(protocol)
    return connections


async def closed_loop(
    connections: list[Connection], requests: list[bytes], duration: float
) -> Tally:
    tally = Tally()
    deadline = time.perf_counter() + duration
    next_request = itertools.cycle(requests).__next__

    async def drive(connection: Connection) -> None:
        while (started := time.perf_counter()) < deadline:
            status = await connection.exchange(next_request())
            tally.add(time.perf_counter() - started, status)

    await asyncio.gather(*(drive(connection) for connection in connections))
    return tally


async def open_loop(
    connections: list[Connection], requests: list[bytes], duration: float, rate: float
) -> Tally:
    tally = Tally()
    next_request = itertools.cycle(requests).__next__
    idle = collections.deque(connections)
    backlog: collections.deque[float] = collections.deque()
    tasks = []

    async def serve(connection: Connection, scheduled: float) -> None:
        while True:
            status = await connection.exchange(next_request())
            tally.add(time.perf_counter() - scheduled, status)
            if not backlog:
                idle.append(connection)
                return
            scheduled = backlog.popleft()

    start = time.perf_counter() + 0.01
    for index in range(max(1, int(duration * rate))):
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle:
            tasks.append(asyncio.ensure_future(serve(idle.popleft(), scheduled)))
        else:
            backlog.append(scheduled)
    await asyncio.gather(*tasks)
    return tally


async def generate(args: argparse.Namespace) -> dict[str, object]:
    requests = [build_request(args.url, Path(body).read_bytes(), args.header) for body in args.body]
    connections = await connect(args.url, args.connections)
    started = time.perf_counter()
    try:
        if args.rate:
            tally = await open_loop(connections, requests, args.duration, args.rate)
        else:
            tally = await closed_loop(connections, requests, args.duration)
    finally:
        for connection in connections:
            connection.close()
    return tally.summary(time.perf_counter() - started)


def run_fast(main: Coroutine[Any, Any, T]) -> T:
    """Run the benchmark's own side on uvloop when it is installed, else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument(
        "--body",
        action="append",
        required=True,
        help="file holding a request body; given several times, the bodies are sent in turn",
    )
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=None, help="requests/s (open loop)")
    args = parser.parse_args()
    print(json.dumps(run_fast(generate(args))))


if __name__ == "__main__":
    main()
