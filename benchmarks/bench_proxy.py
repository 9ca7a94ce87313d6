"""End-to-end benchmark: scrubgate against a plain aiohttp passthrough proxy, same run.

    .venv/bin/python benchmarks/bench_proxy.py [--seconds 5] [--connections 16]

Starts, all on 127.0.0.1: a sink (the "vendor", in this process), a plain aiohttp
passthrough proxy (the baseline, its own process) and scrubgate (its own process, one
worker) with a forward route and a scrub route using the default policy of
config.example.yaml. A keep-alive load generator in this process posts generated
Segment-style batches of 20 events (about 127 KB and 33 KB, plain and gzip) and prints
req/s, events/s, p50/p99 latency and the ratios to the baseline. Before timing, it checks
that what the sink receives from the scrub route is scrubbed.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.payloads import analytics_batch  # noqa: E402

EVENTS_PER_REQUEST = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sink:
    def __init__(self) -> None:
        self.last_body = b""
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.last_body = await request.read()
        return web.json_response({"success": True})

    async def start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 2**20, handler_args={"auto_decompress": False})
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()


def scrubgate_settings(port: int, admin_port: int, sink: str) -> str:
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    settings = {
        "version": 1,
        "listeners": [{"name": "main", "host": "127.0.0.1", "port": port}],
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "hashing": {"key_env": "SCRUBGATE_HASH_KEY"},
        "organization": example["organization"],
        "policies": {"default": example["policies"]["default"]},
        "routes": [
            {
                "name": "forward",
                "match": {"path_prefix": "/fwd"},
                "upstream": sink,
                "category": "analytics",
                "mode": "forward",
            },
            {
                "name": "scrub",
                "match": {"path_prefix": "/scrub"},
                "upstream": sink,
                "category": "analytics",
                "policy": "default",
            },
        ],
    }
    return yaml.safe_dump(settings)


async def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


async def load(
    url: str, body: bytes, headers: dict[str, str], seconds: float, connections: int
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with client.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


async def run(seconds: float, connections: int) -> None:
    sink_port, pass_port, proxy_port, admin_port = (free_port() for _ in range(4))
    sink_url = f"http://127.0.0.1:{sink_port}"
    sink = Sink()
    await sink.start(sink_port)
    settings = Path(tempfile.mkdtemp()) / "bench.yaml"
    settings.write_text(scrubgate_settings(proxy_port, admin_port, sink_url))
    env = {**os.environ, "SCRUBGATE_HASH_KEY": "b" * 64, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.passthrough", str(pass_port), sink_url],
            env=env,
            cwd=ROOT,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy.cli",
                "run",
                "--config",
                str(settings),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        ),
    ]
    try:
        await wait_listening(pass_port)
        await wait_listening(proxy_port)
        await report(sink, seconds, connections, pass_port, proxy_port)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


async def report(
    sink: Sink, seconds: float, connections: int, pass_port: int, proxy_port: int
) -> None:
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {connections} connections, {seconds:g} s per run"
    )
    print(
        f"{'payload':<16} {'path':<22} {'req/s':>8} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'vs passthrough':>15}"
    )
    for name, lean in (("127 KB batch", False), ("33 KB batch", True)):
        raw = orjson.dumps(analytics_batch(lean=lean))
        for encoding in ("plain", "gzip"):
            body = gzip.compress(raw) if encoding == "gzip" else raw
            headers = {
                "Content-Type": "application/json",
                **({"Content-Encoding": "gzip"} if encoding == "gzip" else {}),
            }
            await verify_scrubbed(
                sink, f"http://127.0.0.1:{proxy_port}/scrub/v1/batch", body, headers, encoding
            )
            baseline = None
            for label, url in (
                ("passthrough (baseline)", f"http://127.0.0.1:{pass_port}/v1/batch"),
                ("scrubgate forward", f"http://127.0.0.1:{proxy_port}/fwd/v1/batch"),
                ("scrubgate scrub", f"http://127.0.0.1:{proxy_port}/scrub/v1/batch"),
            ):
                count, latencies = await load(url, body, headers, seconds, connections)
                rate = count / seconds
                baseline = baseline or rate
                print(
                    f"{name + ' ' + encoding:<16} {label:<22} {rate:8,.0f} {rate * EVENTS_PER_REQUEST:9,.0f} "
                    f"{percentile(latencies, 0.5):7.2f} {percentile(latencies, 0.99):7.2f} {rate / baseline:14.0%}"
                )


async def verify_scrubbed(
    sink: Sink, url: str, body: bytes, headers: dict[str, str], encoding: str
) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.post(url, data=body, headers=headers) as response,
    ):
        assert response.status == 200, response.status
    received = gzip.decompress(sink.last_body) if encoding == "gzip" else sink.last_body
    text = received.decode()
    assert (
        "@example.com" not in text
        and "4111 1111" not in text
        and "198.51.100." not in text.replace("198.51.100.0", "")
    ), "scrub route leaked"
    assert len(orjson.loads(received)["batch"]) == EVENTS_PER_REQUEST


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.connections))


if __name__ == "__main__":
    main()
