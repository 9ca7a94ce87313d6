"""Soak test: steady mixed load for minutes, watching the proxy's memory and open files.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 40] [--interval 5]

Starts, all on 127.0.0.1: a sink (the "vendor", in this process) and ``scrubgate run`` on
config.example.yaml as shipped (its own process; SCRUBGATE_UPSTREAM points at the sink).
A keep-alive aiohttp client sends a steady mix: Segment batches (plain and gzip), Sentry
envelopes, OTLP/JSON traces, form beacons, feedback, unparseable bodies and a blocked
route, each answer checked. Every ``--interval`` seconds it samples the proxy's resident
memory (``VmRSS``) and open file descriptors (``/proc/<pid>/fd``) after a warm-up and
prints a row; at the end it compares the averages of the first and last thirds of the run and exits 1 when
memory grew by more than ``--max-rss-growth`` MiB or descriptors by more than
``--max-fd-growth`` (a leak), 2 when requests failed. Not part of CI: it takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.payloads import analytics_batch  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Request:
    """One kind of request in the mix and the statuses that count as correct for it."""

    name: str
    path: str
    body: bytes
    headers: dict[str, str]
    expected: frozenset[int] = frozenset({200})


def _envelope() -> bytes:
    event = orjson.dumps(
        {
            "message": "crash for jane.doe@example.com",
            "user": {"id": "u-1", "ip_address": "203.0.113.7"},
        }
    )
    header = orjson.dumps({"type": "event", "length": len(event)})
    return b'{"event_id":"' + b"a" * 32 + b'"}\n' + header + b"\n" + event + b"\n"


def _otlp_traces() -> bytes:
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "GET /users/42",
        "attributes": [{"key": "user.email", "value": {"stringValue": "a@example.com"}}],
    }
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span] * 20}]}]})


def request_mix() -> list[Request]:
    batch = orjson.dumps(analytics_batch())
    lean = orjson.dumps(analytics_batch(seed=3, lean=True))
    json = {"Content-Type": "application/json"}
    context = base64.urlsafe_b64encode(orjson.dumps({"email": "x@example.com"})).decode()
    return [
        Request("batch", "/v1/batch", batch, json),
        Request(
            "batch-gzip", "/v1/batch", gzip.compress(lean), {**json, "Content-Encoding": "gzip"}
        ),
        Request("track", "/v1/track", lean, json),
        Request(
            "envelope",
            "/api/42/envelope/",
            _envelope(),
            {"Content-Type": "application/x-sentry-envelope"},
        ),
        Request("otlp", "/v1/traces", _otlp_traces(), json),
        Request(
            "beacon",
            "/collect",
            f"e=pv&url=https%3A%2F%2Fa.example%2F%3Femail%3Dx%40y.io&cx={context}".encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        Request(
            "feedback",
            "/feedback",
            orjson.dumps({"userId": "u-9", "text": "call me at +1 415 555 2671"}),
            json,
        ),
        Request("unparseable", "/v1/track", b'{"userId": "u-1", "text": ', json),
        Request("blocked", "/internal/x", b"{}", json, frozenset({403})),
    ]


class Sink:
    """The vendor: answers every request with success and counts the bytes."""

    def __init__(self) -> None:
        self.received = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.received += len(await request.read())
        return web.json_response({"success": True})

    async def start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 2**20, handler_args={"auto_decompress": False})
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()


@dataclass
class Tally:
    sent: int = 0
    wrong: Counter[str] = field(default_factory=Counter)


def proc_figures(pid: int) -> tuple[int, int]:
    """(resident memory in KiB, open file descriptors) of process ``pid``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def drive(base: str, rate: float, connections: int, deadline: float, tally: Tally) -> None:
    """Send the mix round-robin at ``rate`` requests/s over keep-alive connections."""
    mix = request_mix()
    interval = connections / rate
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as client:

        async def worker(offset: int) -> None:
            index = offset
            next_send = time.monotonic()
            while time.monotonic() < deadline:
                request = mix[index % len(mix)]
                index += 1
                try:
                    async with client.post(
                        base + request.path, data=request.body, headers=request.headers
                    ) as response:
                        await response.read()
                        if response.status not in request.expected:
                            tally.wrong[f"{request.name}:{response.status}"] += 1
                except aiohttp.ClientError as error:
                    tally.wrong[f"{request.name}:{type(error).__name__}"] += 1
                tally.sent += 1
                next_send += interval
                await asyncio.sleep(max(0.0, next_send - time.monotonic()))

        await asyncio.gather(*(worker(number) for number in range(connections)))


async def sample(
    pid: int,
    interval: float,
    warmup: float,
    deadline: float,
    tally: Tally,
    rows: list[tuple[float, int, int]],
) -> None:
    """Sample after ``warmup`` seconds (connections and caches filled) until ``deadline``."""
    started = time.monotonic()
    await asyncio.sleep(warmup)
    print(f"{'time s':>7} {'requests':>9} {'wrong':>6} {'RSS MiB':>8} {'open fds':>9}")
    while True:
        rss, fds = proc_figures(pid)
        elapsed = time.monotonic() - started
        rows.append((elapsed, rss, fds))
        wrong = sum(tally.wrong.values())
        print(f"{elapsed:7.0f} {tally.sent:9d} {wrong:6d} {rss / 1024:8.1f} {fds:9d}", flush=True)
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def growth(rows: list[tuple[float, int, int]]) -> tuple[float, float]:
    """(RSS growth in MiB, fd growth) between the averages of the first and last thirds."""
    third = max(1, len(rows) // 3)
    first, last = rows[:third], rows[-third:]
    rss = (mean(row[1] for row in last) - mean(row[1] for row in first)) / 1024
    fds = mean(row[2] for row in last) - mean(row[2] for row in first)
    return rss, fds


async def wait_listening(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


async def run(args: argparse.Namespace) -> int:
    sink_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    sink = Sink()
    await sink.start(sink_port)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCRUBGATE_HASH_KEY": "soak-" + "k" * 40,
        "SCRUBGATE_UPSTREAM": f"http://127.0.0.1:{sink_port}",
        "SCRUBGATE_PORT": str(proxy_port),
        "SCRUBGATE_ADMIN_PORT": str(admin_port),
    }
    command = [sys.executable, "-m", "proxy.cli", "run", "--config", "config.example.yaml"]
    process = subprocess.Popen([*command, "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        await wait_listening(proxy_port)
        tally, rows = Tally(), []
        deadline = time.monotonic() + args.minutes * 60
        warmup = min(args.warmup, args.minutes * 60 / 5)
        base = f"http://127.0.0.1:{proxy_port}"
        await asyncio.gather(
            drive(base, args.rate, args.connections, deadline, tally),
            sample(process.pid, args.interval, warmup, deadline, tally, rows),
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
        if sink.runner is not None:
            await sink.runner.cleanup()
    return report(args, tally, rows, sink.received)


def report(
    args: argparse.Namespace, tally: Tally, rows: list[tuple[float, int, int]], received: int
) -> int:
    rss_growth, fd_growth = growth(rows)
    print(
        f"\n{tally.sent} requests in {args.minutes:g} min ({tally.sent / (args.minutes * 60):.1f}/s), "
        f"{received / 2**20:.1f} MiB reached the sink"
    )
    print(f"wrong answers: {dict(tally.wrong) or 'none'}")
    print(
        f"growth, last third vs first third: RSS {rss_growth:+.1f} MiB "
        f"(limit {args.max_rss_growth:g}), open fds {fd_growth:+.1f} (limit {args.max_fd_growth:g})"
    )
    if rss_growth > args.max_rss_growth or fd_growth > args.max_fd_growth:
        print("FAIL: the proxy keeps growing")
        return 1
    if tally.wrong:
        print("FAIL: some requests were not answered as expected")
        return 2
    print("OK")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="duration of the load")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds of load before the first sample"
    )
    parser.add_argument("--max-rss-growth", type=float, default=16.0, help="MiB")
    parser.add_argument("--max-fd-growth", type=float, default=4.0, help="descriptors")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
