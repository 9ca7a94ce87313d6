"""Multi-core: ``scrubgate run`` with ``workers: 2`` as a real process tree against a real
upstream — exact merged metrics, traffic on both workers, a killed worker restarted,
reloads reaching every worker (or none), and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent.parent
WORKERS = 2
REQUESTS = 40
"""Requests per batch, each on its own connection: the kernel spreads connections over
the workers, and all 40 landing on one of two workers has a chance of 2**-39."""

TEMPLATE = """
version: 1
workers: {workers}
listeners: [{{name: main, port: {port}}}]
admin: {{port: {admin_port}}}
policies:
  p:
    rules:
      - {{id: mark, action: replace, select: m, with: "{marker}"}}
routes:
  - {{name: r, upstream: "{upstream}", category: analytics, policy: p}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Scrubgate:
    """A running ``scrubgate run`` process tree and where to reach it."""

    process: subprocess.Popen[bytes]
    settings: Path
    log: Path
    base: str
    admin: str
    template: dict[str, object]

    def write_settings(self, marker: str, typo: bool = False) -> str:
        text = TEMPLATE.format(marker=marker, **self.template)
        if typo:
            text = text.replace("action: replace", "action: replaec")
        self.settings.write_text(text)
        return hashlib.sha256(text.encode()).hexdigest()

    def log_lines(self) -> list[dict]:
        return [orjson.loads(line) for line in self.log.read_text().splitlines() if line]

    def access_lines_per_worker(self) -> Counter[int]:
        return Counter(
            line["worker"] for line in self.log_lines() if line["logger"] == "scrubgate.access"
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
async def scrubgate(tmp_path, upstream):
    template = {
        "workers": WORKERS,
        "port": free_port(),
        "admin_port": free_port(),
        "upstream": upstream.url,
    }
    settings = tmp_path / "settings.yaml"
    settings.write_text(TEMPLATE.format(marker="A", **template))
    log = tmp_path / "scrubgate.log"
    temp = tmp_path / "tmp"
    temp.mkdir()
    # Appending: the supervisor and its workers share this file.
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy.cli",
                "run",
                "--config",
                str(settings),
                "--log-format",
                "json",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp)},
            stderr=stderr,
        )
    running = Scrubgate(
        process,
        settings,
        log,
        f"http://127.0.0.1:{template['port']}",
        f"http://127.0.0.1:{template['admin_port']}",
        template,
    )
    try:
        await wait_ready(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


async def wait_ready(running: Scrubgate, unlike: set[int] = frozenset()) -> list[int]:
    """Wait until every worker is ready (and none has a pid in ``unlike``); their pids."""
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            assert running.process.poll() is None, running.log.read_text()
            try:
                async with client.get(running.admin + "/-/ready") as response:
                    answer = await response.json()
                    pids = [worker["pid"] for worker in answer["workers"]]
                    if response.status == 200 and not set(pids) & unlike:
                        return pids
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the workers did not become ready:\n" + running.log.read_text())


async def send_batch(base: str, count: int = REQUESTS) -> list[int]:
    """``count`` requests, each on a new connection; their statuses."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one() -> int:
            async with client.post(base + "/e", json={"m": "x", "n": 1}) as response:
                await response.read()
                return response.status

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def scrape(admin: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as client, client.get(admin + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def markers(upstream) -> set[str]:
    return {orjson.loads(arrival.body)["m"] for arrival in upstream.arrivals}


async def test_metrics_count_every_request_exactly_and_both_workers_serve(scrubgate, upstream):
    assert await send_batch(scrubgate.base) == [200] * REQUESTS
    samples = await scrape(scrubgate.admin)
    assert total(samples, "scrubgate_requests_total", route="r", verdict="scrubbed") == REQUESTS
    assert total(samples, "scrubgate_requests_total") == REQUESTS
    assert total(samples, "scrubgate_rule_hits_total", route="r", rule="mark") == REQUESTS
    assert total(samples, "scrubgate_upstream_responses_total", status_class="2xx") == REQUESTS
    assert total(samples, "scrubgate_events_total", verdict="kept") == REQUESTS
    assert total(samples, "scrubgate_workers") == WORKERS
    assert total(samples, "scrubgate_config_last_reload_successful") == 1
    assert total(samples, "scrubgate_worker_restarts_total") == 0
    assert len(upstream.arrivals) == REQUESTS and markers(upstream) == {"A"}
    served = scrubgate.access_lines_per_worker()
    assert set(served) == set(range(WORKERS)), served
    assert sum(served.values()) == REQUESTS
    assert scrubgate.stop() == 0


async def test_a_killed_worker_is_restarted_and_no_count_is_lost(scrubgate, upstream):
    assert await send_batch(scrubgate.base) == [200] * REQUESTS
    pids = await wait_ready(scrubgate)
    os.kill(pids[1], signal.SIGKILL)
    new_pids = await wait_ready(scrubgate, unlike={pids[1]})
    assert new_pids[0] == pids[0] and new_pids[1] != pids[1]
    assert await send_batch(scrubgate.base) == [200] * REQUESTS
    samples = await scrape(scrubgate.admin)
    assert total(samples, "scrubgate_worker_restarts_total") == 1
    assert total(samples, "scrubgate_worker_restarts_total", worker="1") == 1
    assert total(samples, "scrubgate_workers") == WORKERS
    assert total(samples, "scrubgate_requests_total", verdict="scrubbed") == 2 * REQUESTS
    # Each worker writes its in-flight count every second: a scrape right after the
    # batch may still show the last write made during it.
    assert await in_flight_within(scrubgate.admin, 0, seconds=2.5)
    assert len(upstream.arrivals) == 2 * REQUESTS
    assert scrubgate.stop() == 0


async def test_requests_in_flight_are_counted_over_every_worker(scrubgate, upstream):
    upstream.delay = 3.0
    slow = asyncio.create_task(send_batch(scrubgate.base, count=6))
    # Each worker writes its count every second: within two, all six show.
    assert await in_flight_within(scrubgate.admin, 6, seconds=2.5)
    assert await slow == [200] * 6
    assert await in_flight_within(scrubgate.admin, 0, seconds=2.5)
    assert scrubgate.stop() == 0


async def in_flight_within(admin: str, expected: float, seconds: float) -> bool:
    """Whether the merged in-flight gauge reads ``expected`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if total(await scrape(admin), "scrubgate_in_flight_requests") == expected:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_reload_reaches_every_worker_or_none(scrubgate, upstream):
    digest_b = scrubgate.write_settings("B")
    async with aiohttp.ClientSession() as client:
        async with client.post(scrubgate.admin + "/-/reload") as response:
            assert response.status == 200
            assert await response.json() == {"status": "reloaded", "changed": True}
        assert await send_batch(scrubgate.base) == [200] * REQUESTS
        assert markers(upstream) == {"B"}
        served = scrubgate.access_lines_per_worker()
        assert set(served) == set(range(WORKERS)), served

        scrubgate.write_settings("C", typo=True)
        async with client.post(scrubgate.admin + "/-/reload") as response:
            assert response.status == 400
            answer = await response.json()
        assert answer["status"] == "failed"
        assert any("replaec" in error and "action" in error for error in answer["errors"])
        upstream.arrivals.clear()
        assert await send_batch(scrubgate.base) == [200] * REQUESTS
        assert markers(upstream) == {"B"}
        async with client.get(scrubgate.admin + "/-/config") as response:
            assert (await response.json())["sha256"] == digest_b
    samples = await scrape(scrubgate.admin)
    assert total(samples, "scrubgate_config_last_reload_successful") == 0
    assert total(samples, "scrubgate_config_reloads_total", result="success") == 1
    assert total(samples, "scrubgate_config_reloads_total", result="failure") == 1
    assert total(samples, "scrubgate_config_info", sha256=digest_b) == 1
    reloaded = [
        line["worker"]
        for line in scrubgate.log_lines()
        if line["message"].startswith("settings reloaded after SIGHUP")
    ]
    assert sorted(reloaded) == list(range(WORKERS))
    assert scrubgate.stop() == 0


async def test_sighup_reloads_every_worker(scrubgate, upstream):
    scrubgate.write_settings("D")
    scrubgate.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while not (await scrape(scrubgate.admin)).get(
        ("scrubgate_config_reloads_total", (("result", "success"),))
    ):
        assert time.monotonic() < deadline, "the SIGHUP reload did not finish"
        await asyncio.sleep(0.1)
    assert await send_batch(scrubgate.base) == [200] * REQUESTS
    assert markers(upstream) == {"D"}
    assert scrubgate.stop() == 0


async def test_sigterm_stops_every_worker_and_cleans_up(scrubgate, tmp_path):
    assert await send_batch(scrubgate.base, 4) == [200] * 4
    assert [path.name[:18] for path in (tmp_path / "tmp").iterdir()] == ["scrubgate-metrics-"]
    assert scrubgate.stop() == 0
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(aiohttp.ClientConnectionError):
        await send_batch(scrubgate.base, 1)


async def test_a_worker_restarted_on_a_changed_file_brings_every_worker_to_it(scrubgate, upstream):
    digest_e = scrubgate.write_settings("E")
    pids = await wait_ready(scrubgate)
    os.kill(pids[0], signal.SIGKILL)
    await wait_ready(scrubgate, unlike={pids[0]})
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as client:
        while True:
            async with client.get(scrubgate.admin + "/-/config") as response:
                if (await response.json())["sha256"] == digest_e:
                    break
            assert time.monotonic() < deadline, "the workers were not brought to one file"
            await asyncio.sleep(0.1)
    assert await send_batch(scrubgate.base) == [200] * REQUESTS
    assert markers(upstream) == {"E"}
    samples = await scrape(scrubgate.admin)
    assert total(samples, "scrubgate_config_reloads_total", result="success") == 1
    assert total(samples, "scrubgate_config_last_reload_successful") == 1
    assert scrubgate.stop() == 0


def test_a_port_in_use_is_a_clear_error_at_start(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            TEMPLATE.format(
                workers=WORKERS,
                port=port,
                admin_port=free_port(),
                upstream="http://127.0.0.1:9",
                marker="A",
            )
        )
        result = subprocess.run(
            [sys.executable, "-m", "proxy.cli", "run", "--config", str(settings)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert (
        f"cannot start: listener 'main' cannot use 127.0.0.1:{port} (Address already in use)"
        in result.stderr.decode()
    )
