"""Store and forward under upstream faults: every event a client was told is accepted
reaches the upstream, scrubbed, in order per route; duplicates only where the upstream had
already received a body whose answer was lost (the documented at-least-once bound).

The upstream here is scriptable: it can be down, slow, reset connections, or answer 500 or
429 with Retry-After. The proxy runs in-process, except for the SIGKILL test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from proxy.metrics import REGISTRY
from tests.e2e.processes import exit_code, free_port, spawn_proxy, wait_ready

CANARY = "leak.canary@example.com"


def settings(upstream_port: int, spool: Path, retry_max: str = "400ms", **extra: str) -> str:
    spool_extra = extra.get("spool_options", "")
    return f"""
version: 1
listeners: [{{name: main, port: 0}}]
admin: {{port: 0}}
hashing: {{key_env: E2E_HASH_KEY}}
limits: {{upstream_timeout: 500ms, upstream_connect_timeout: 500ms}}
spool: {{directory: "{spool}", retry_initial: 50ms, retry_max: {retry_max}{spool_extra}}}
policies:
  p: {{rules: [{{id: redact, action: redact}}]}}
routes:
  - name: batch
    match: {{path_prefix: /v1}}
    upstream: "http://127.0.0.1:{upstream_port}"
    category: analytics
    policy: p
    format: json
    {extra.get("route", "")}
"""


class ScriptedUpstream:
    """Records the event ids it receives; answers from a script of faults, then 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.script: list[str] = []
        self.received: list[str] = []
        self.bodies: list[bytes] = []
        self.arrival_times: list[float] = []
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.bodies.append(body)
        self.arrival_times.append(time.monotonic())
        fault = self.script.pop(0) if self.script else "ok"
        if fault == "reset":
            # The body arrived, the answer never does: the request's fate is unknown.
            request.transport.close()  # type: ignore[union-attr]
            await asyncio.sleep(1)
        if fault == "slow":
            await asyncio.sleep(2)
        if fault == "500":
            return web.json_response({"error": "boom"}, status=500)
        if fault.startswith("429"):
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": fault.split(":")[1]}
            )
        self.received.extend(event["messageId"] for event in orjson.loads(body)["batch"])
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedUpstream]:
    upstream = ScriptedUpstream(free_port())
    yield upstream
    await upstream.stop()


def batch(first: int, count: int = 3) -> dict:
    return {
        "batch": [
            {"messageId": f"m{n:05d}", "type": "track", "properties": {"note": f"mail {CANARY}"}}
            for n in range(first, first + count)
        ]
    }


async def send_batches(base: str, start: int, requests: int, per: int = 3) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as client:
        for index in range(requests):
            async with client.post(base + "/v1/batch", json=batch(start + index * per, per)) as r:
                await r.read()
                statuses.append(r.status)
    return statuses


def ids(first: int, count: int) -> list[str]:
    return [f"m{n:05d}" for n in range(first, first + count)]


async def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not delivered in time"
        await asyncio.sleep(0.02)


def assert_delivered_once_in_order(upstream: ScriptedUpstream, expected: list[str]) -> None:
    assert upstream.received == expected
    assert all(CANARY.encode() not in body for body in upstream.bodies)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_upstream_down_at_start_everything_is_delivered_when_it_comes_up(
    start_proxy, scripted, tmp_path
):
    base = await start_proxy(settings(scripted.port, tmp_path / "spool"))
    spooled = sample(
        "scrubgate_requests_total", route="batch", category="analytics", verdict="spooled"
    )
    assert await send_batches(base, 0, 10) == [200] * 10
    assert (
        sample("scrubgate_requests_total", route="batch", category="analytics", verdict="spooled")
        - spooled
        == 10
    )
    assert sample("scrubgate_spool_requests", route="batch") == 10
    await scripted.start()
    await wait_for(lambda: len(scripted.received) == 30)
    assert_delivered_once_in_order(scripted, ids(0, 30))
    await wait_for(lambda: sample("scrubgate_spool_requests", route="batch") == 0)


async def test_upstream_dying_mid_traffic_loses_nothing(start_proxy, scripted, tmp_path):
    await scripted.start()
    base = await start_proxy(settings(scripted.port, tmp_path / "spool"))
    assert await send_batches(base, 0, 5) == [200] * 5
    await scripted.stop()
    assert await send_batches(base, 15, 5) == [200] * 5
    await scripted.start()
    # New traffic queues behind the backlog, so the route's order holds.
    assert await send_batches(base, 30, 2) == [200] * 2
    await wait_for(lambda: len(scripted.received) == 36)
    assert_delivered_once_in_order(scripted, ids(0, 36))


async def test_500s_and_429_with_retry_after_are_retried_in_order(start_proxy, scripted, tmp_path):
    await scripted.start()
    scripted.script = ["500", "500", "429:1", "500"]
    base = await start_proxy(settings(scripted.port, tmp_path / "spool", retry_max="2s"))
    retries = sample("scrubgate_spool_retries_total", route="batch")
    assert await send_batches(base, 0, 4) == [200] * 4
    await wait_for(lambda: len(scripted.received) == 12)
    assert_delivered_once_in_order(scripted, ids(0, 12))
    # Request 1 failed with 500 (spooled), then retries met 500, 429 (Retry-After: 1), 500.
    assert sample("scrubgate_spool_retries_total", route="batch") - retries == 3
    after_429 = scripted.arrival_times[3] - scripted.arrival_times[2]
    assert after_429 >= 1.0


async def test_slow_and_resetting_upstreams_deliver_at_least_once(start_proxy, scripted, tmp_path):
    await scripted.start()
    scripted.script = ["slow", "reset", "ok", "reset"]
    base = await start_proxy(settings(scripted.port, tmp_path / "spool"))
    assert await send_batches(base, 0, 3) == [200] * 3
    await wait_for(lambda: set(scripted.received) >= set(ids(0, 9)))
    await asyncio.sleep(0.3)
    # Each fault happened after the upstream had the body, so each may add one duplicate
    # (here: none did, because faulted requests never recorded their events).
    assert sorted(set(scripted.received)) == ids(0, 9)
    assert len(scripted.received) - 9 <= 3
    assert all(CANARY.encode() not in body for body in scripted.bodies)


async def test_relay_routes_pass_the_upstream_failure_to_the_client(
    start_proxy, scripted, tmp_path
):
    await scripted.start()
    scripted.script = ["500"]
    text = settings(scripted.port, tmp_path / "spool", route="on_upstream_failure: relay")
    base = await start_proxy(text)
    assert await send_batches(base, 0, 2) == [500, 200]
    assert scripted.received == ids(3, 3)
    assert not list((tmp_path / "spool" / "worker-0").glob("*.req"))


async def test_a_full_spool_rejecting_new_requests_answers_503_and_keeps_serving(
    start_proxy, scripted, tmp_path
):
    text = settings(scripted.port, tmp_path / "spool", spool_options=", max_bytes: 2KiB")
    base = await start_proxy(text)
    statuses = await send_batches(base, 0, 6)
    accepted = statuses.count(200)
    assert 1 <= accepted < 6
    # Spooled requests got 200. Once a backlog exists, new requests queue behind it without
    # trying the upstream; those that no longer fit get 503 + Retry-After, so clients retry.
    assert statuses == [200] * accepted + [503] * (6 - accepted)
    full = sample("scrubgate_overload_rejections_total", route="batch", reason="spool_full")
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/v1/b", json=batch(100)) as response,
    ):
        assert (response.status, response.headers["Retry-After"]) == (503, "1")
    assert (
        sample("scrubgate_overload_rejections_total", route="batch", reason="spool_full")
        == full + 1
    )
    await scripted.start()
    await wait_for(lambda: len(scripted.received) == accepted * 3)
    assert await send_batches(base, 200, 1) == [200]
    await wait_for(lambda: len(scripted.received) == accepted * 3 + 3)
    assert_delivered_once_in_order(scripted, ids(0, accepted * 3) + ids(200, 3))


async def test_an_unwritable_spool_relays_failures_and_the_proxy_keeps_serving(
    start_proxy, scripted, tmp_path
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    base = await start_proxy(settings(scripted.port, blocker / "spool"))
    before = sample("scrubgate_spool_drops_total", route="batch", reason="write_error")
    assert await send_batches(base, 0, 2) == [502, 502]
    assert sample("scrubgate_spool_drops_total", route="batch", reason="write_error") - before == 2
    await scripted.start()
    assert await send_batches(base, 6, 2) == [200, 200]
    assert scripted.received == ids(6, 6)


def process_settings(
    scripted: ScriptedUpstream, directory: Path, workers: int
) -> tuple[Path, int, int]:
    """Settings for a proxy run as its own process: fixed ports (workers share them).
    Returns the file, the proxy port and the admin port."""
    port, admin_port = free_port(), free_port()
    config = directory / "settings.yaml"
    config.write_text(
        settings(scripted.port, directory / "spool")
        .replace("{name: main, port: 0}", f"{{name: main, port: {port}}}")
        .replace("admin: {port: 0}", f"admin: {{port: {admin_port}}}")
        + f"workers: {workers}\n"
    )
    return config, port, admin_port


async def _all_pids(admin_port: int, process: subprocess.Popen[bytes]) -> list[int]:
    """The proxy's process ids: the single process, or the supervisor and its workers."""
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://127.0.0.1:{admin_port}/-/ready") as response,
    ):
        answer = await response.json()
    return [process.pid, *(worker["pid"] for worker in answer.get("workers", []))]


def _spooled_files(spool: Path) -> list[Path]:
    return list(spool.glob("worker-*/*.req"))


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigkill_with_a_full_spool_then_restart_delivers_everything(
    scripted, tmp_path, workers
):
    config, port, admin_port = process_settings(scripted, tmp_path, workers)
    process = spawn_proxy(config)
    pids = [process.pid]
    try:
        await wait_ready(admin_port, process)
        pids = await _all_pids(admin_port, process)
        assert len(pids) == (1 if workers == 1 else 1 + workers)
        statuses = await asyncio.gather(
            *(send_batches(f"http://127.0.0.1:{port}", n * 6, 2) for n in range(4))
        )
        assert [status for batch in statuses for status in batch] == [200] * 8
    finally:
        # Every process dies at once, as in a power cut or an OOM kill of the cgroup.
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(10)
    assert len(_spooled_files(tmp_path / "spool")) == 8
    await scripted.start()
    process = spawn_proxy(config)
    try:
        await wait_ready(admin_port, process)
        await wait_for(lambda: len(scripted.received) == 24)
        assert sorted(scripted.received) == ids(0, 24)
        for client in range(4):
            # Each client's requests went in order through one connection, one worker.
            mine = [event for event in scripted.received if int(event[1:]) // 6 == client]
            assert mine == sorted(mine)
        await wait_for(lambda: not _spooled_files(tmp_path / "spool"))
    finally:
        process.send_signal(signal.SIGTERM)
        assert await exit_code(process) == 0


def _limit_file_size() -> None:
    """In the child: files may not grow past 1 KiB (EFBIG, like a full disk), and the
    signal that would normally kill the process for trying is ignored."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


async def test_a_disk_that_fills_mid_write_leaves_no_partial_file_and_serving_continues(
    scripted, tmp_path
):
    # One process: the limit would also hit the metric files workers share.
    config, port, admin_port = process_settings(scripted, tmp_path, workers=1)
    process = spawn_proxy(config, preexec_fn=_limit_file_size)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(admin_port, process)
        assert await send_batches(base, 0, 1, per=20) == [502]  # too big to write: relayed
        assert await send_batches(base, 100, 1, per=1) == [200]  # fits: spooled
        # The failed write left no partial file behind.
        names = sorted(path.name for path in (tmp_path / "spool" / "worker-0").iterdir())
        assert [name.rpartition(".")[2] for name in names] == ["lock", "req"]
        await scripted.start()
        await wait_for(lambda: scripted.received == ids(100, 1))
        assert await send_batches(base, 200, 1, per=20) == [200]
        assert scripted.received == ids(100, 1) + ids(200, 20)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await exit_code(process) == 0


@contextlib.contextmanager
def mounted_tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A real tmpfs at ``where`` (read-only or tiny, to fail writes as a real disk does);
    skips the test where this machine does not let us mount."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_read_only_spool_relays_failures_until_it_becomes_writable(
    start_proxy, scripted, tmp_path
):
    with mounted_tmpfs(tmp_path / "volume", "ro,size=1m") as volume:
        base = await start_proxy(settings(scripted.port, volume / "spool"))
        assert await send_batches(base, 0, 2) == [502, 502]
        subprocess.run(["mount", "-o", "remount,rw", str(volume)], check=True)
        # The spool is opened again on the next request that needs it.
        assert await send_batches(base, 6, 2) == [200, 200]
        await scripted.start()
        await wait_for(lambda: len(scripted.received) == 6)
        assert_delivered_once_in_order(scripted, ids(6, 6))


async def test_a_full_disk_keeps_what_fit_and_relays_the_rest(start_proxy, scripted, tmp_path):
    with mounted_tmpfs(tmp_path / "volume", "size=64k") as volume:
        text = settings(scripted.port, volume / "spool", spool_options=", max_bytes: 10MiB")
        base = await start_proxy(text)
        statuses = [(await send_batches(base, index * 10, 1, per=10))[0] for index in range(40)]
        accepted = statuses.index(503) if 503 in statuses else statuses.count(200)
        assert accepted >= 1
        # The first request that did not fit found the upstream down and got its 502 or,
        # queued behind the backlog, a 503; either way its client retries. None of them
        # left a partial file.
        assert set(statuses[accepted:]) <= {502, 503}
        assert statuses[:accepted] == [200] * accepted
        assert not list((volume / "spool").glob("worker-*/*.tmp"))
        await scripted.start()
        await wait_for(lambda: len(scripted.received) == accepted * 10)
        assert_delivered_once_in_order(scripted, ids(0, accepted * 10))
