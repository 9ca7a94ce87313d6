"""benchmarks/load.py: both load generators send every body of a load, in turn."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import load as loading
from benchmarks.http1 import Message
from benchmarks.sink import Sink

GENERATORS = [
    "builtin",
    pytest.param(
        "wrk",
        marks=pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed"),
    ),
]


class _CountingSink(Sink):
    """A sink that counts the requests per body."""

    def __init__(self) -> None:
        super().__init__()
        self.capture = True
        self.bodies: Counter[bytes] = Counter()

    def received(self, message: Message) -> None:
        super().received(message)
        self.bodies[message.body] += 1


@pytest.mark.parametrize("generator", GENERATORS)
def test_several_bodies_are_sent_in_turn(tmp_path: Path, generator: str) -> None:
    bodies = [b'{"n":%d}' % number for number in range(3)]
    files = []
    for number, body in enumerate(bodies):
        files.append(tmp_path / f"{number}.body")
        files[-1].write_bytes(body)

    async def run() -> tuple[loading.LoadResult, Counter[bytes]]:
        sink = _CountingSink()
        port = await sink.start()
        try:
            load = loading.Load(f"http://127.0.0.1:{port}/v1/batch", tuple(files), None)
            result = await loading.closed_loop(generator, load, 2, 0.5)
        finally:
            await sink.close()
        return result, sink.bodies

    result, received = asyncio.run(run())
    assert set(received) == set(bodies)
    # In turn: the counts of what was sent differ by one at most, and at most one request
    # per connection was still on its way when the run ended.
    assert max(received.values()) - min(received.values()) <= 3
    assert sum(received.values()) >= result.requests > 0
