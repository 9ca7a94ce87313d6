"""Reload is a transaction: under traffic, valid and invalid reloads alternate, no request
fails and every request is scrubbed by exactly one complete plan. Also SIGHUP."""

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path

import aiohttp
import orjson

from proxy import metrics
from proxy.server import ScrubgateServer
from proxy.state import SettingsHolder

ROOT = Path(__file__).resolve().parent.parent.parent

TEMPLATE = """
version: 1
listeners: [{{name: main, port: {port}}}]
admin: {{port: {admin_port}}}
policies:
  p:
    rules:
      - {{id: first, action: replace, select: m1, with: "{marker}"}}
      - {{id: second, action: replace, select: m2, with: "{marker}"}}
      - {{id: redact, action: redact}}
routes:
  - {{name: r, upstream: "{upstream}", category: analytics, policy: p}}
"""


def settings(marker: str, upstream: str, port: int = 0, admin_port: int = 0) -> str:
    return TEMPLATE.format(marker=marker, upstream=upstream, port=port, admin_port=admin_port)


async def test_reloads_under_traffic_never_mix_plans_or_fail(tmp_path, upstream):
    path = tmp_path / "settings.yaml"
    path.write_text(settings("A", upstream.url))
    holder = SettingsHolder(str(path), {})
    server = ScrubgateServer(holder)
    await server.start()
    base = f"http://127.0.0.1:{server.bound['main']}"
    statuses: list[int] = []
    outcomes: list[bool] = []

    async def traffic() -> None:
        async with aiohttp.ClientSession() as client:

            async def one() -> None:
                async with client.post(
                    base + "/e", json={"m1": "x", "m2": "y", "t": "a@example.com"}
                ) as response:
                    statuses.append(response.status)

            for _ in range(25):
                await asyncio.gather(*(one() for _ in range(8)))

    async def reloads() -> None:
        for number in range(20):
            if number % 2:
                path.write_text(
                    settings("B" if number % 4 == 1 else "A", upstream.url).replace(
                        "replace", "replaec", 1
                    )
                )
            else:
                path.write_text(settings("B" if number % 4 == 0 else "A", upstream.url))
            outcomes.append(holder.reload().ok)
            await asyncio.sleep(0.01)

    try:
        await asyncio.gather(traffic(), reloads())
    finally:
        await server.stop()
    assert statuses == [200] * 200
    assert outcomes == [True, False] * 10
    markers = [orjson.loads(arrival.body) for arrival in upstream.arrivals]
    assert len(markers) == 200
    assert all(body["m1"] == body["m2"] and body["m1"] in ("A", "B") for body in markers)
    assert {body["m1"] for body in markers} == {"A", "B"}
    assert all(body["t"] == "[email]" for body in markers)
    assert metrics.REGISTRY.get_sample_value("scrubgate_config_last_reload_successful") == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_sighup_reloads_a_running_process(tmp_path, upstream):
    port, admin_port = _free_port(), _free_port()
    path = tmp_path / "settings.yaml"
    path.write_text(settings("A", upstream.url, port, admin_port))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "run", "--config", str(path)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as client:
            await _wait_ready(client, f"http://127.0.0.1:{admin_port}/-/ready")
            async with client.post(
                f"http://127.0.0.1:{port}/e", json={"m1": "x", "m2": "y"}
            ) as response:
                assert response.status == 200
            path.write_text(settings("B", upstream.url, port, admin_port))
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                async with client.post(
                    f"http://127.0.0.1:{port}/e", json={"m1": "x", "m2": "y"}
                ) as response:
                    assert response.status == 200
                if orjson.loads(upstream.arrivals[-1].body)["m1"] == "B":
                    break
                await asyncio.sleep(0.1)
        assert orjson.loads(upstream.arrivals[-1].body) == {"m1": "B", "m2": "B"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


async def _wait_ready(client: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with client.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("scrubgate did not become ready")


async def test_watched_settings_file_reloads_on_change_and_skips_broken_versions(
    tmp_path, upstream
):
    path = tmp_path / "settings.yaml"
    watch = "reload: {watch: true, interval: 50ms}\n"
    path.write_text(settings("A", upstream.url) + watch)
    holder = SettingsHolder(str(path), {})
    server = ScrubgateServer(holder)
    await server.start()
    base = f"http://127.0.0.1:{server.bound['main']}"
    try:
        path.write_text(settings("B", upstream.url).replace("replace", "replaec", 1) + watch)
        await asyncio.sleep(0.3)
        assert holder.current.settings.routes[0].plan is not None
        assert metrics.REGISTRY.get_sample_value("scrubgate_config_last_reload_successful") == 0
        path.write_text(settings("B", upstream.url) + watch)
        deadline = time.monotonic() + 10
        while "B" not in holder.current.settings.raw["policies"]["p"]["rules"][0]["with"]:
            assert time.monotonic() < deadline, "the watcher did not reload"
            await asyncio.sleep(0.05)
        async with (
            aiohttp.ClientSession() as client,
            client.post(base + "/e", json={"m1": 1, "m2": 2}) as response,
        ):
            assert response.status == 200
        assert orjson.loads(upstream.arrivals[-1].body) == {"m1": "B", "m2": "B"}
    finally:
        await server.stop()


def _one_route_settings(tmp_path: Path) -> Path:
    """A settings file with one scrub route and ephemeral ports."""
    path = tmp_path / "settings.yaml"
    path.write_text(
        "version: 1\n"
        "listeners: [{name: main, port: 0}]\n"
        "admin: {port: 0}\n"
        "policies: {p: {rules: [{id: redact, action: redact}]}}\n"
        "routes: [{name: r, upstream: 'http://127.0.0.1:9', category: analytics, policy: p}]\n"
    )
    return path


async def test_a_replaced_plan_is_garbage_collected(tmp_path):
    """Startup objects are frozen out of the cyclic collector for speed; a reload lifts
    the freeze first, so the plan it replaces does not stay in memory."""
    path = _one_route_settings(tmp_path)
    server = ScrubgateServer(SettingsHolder(str(path), {}))
    await server.start()
    try:
        old_plan = weakref.ref(server.holder.current.settings.plans["p"])
        assert server.holder.reload().ok
        gc.collect()
        assert old_plan() is None
    finally:
        await server.stop()


async def test_a_started_server_does_not_collect_while_a_batch_is_parsed(tmp_path):
    """A parsed batch's objects all die together when its request ends; the collector's
    default threshold (700 containers) made it traverse them about every other request."""
    path = _one_route_settings(tmp_path)
    event = {"context": {"page": {"url": "https://x.example/"}, "traits": {"plan": "pro"}}}
    batch = orjson.dumps({"batch": [{**event, "items": [{"n": n} for n in range(40)]}] * 20})
    thresholds = gc.get_threshold()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    server = ScrubgateServer(SettingsHolder(str(path), {}))
    await server.start()
    gc.callbacks.append(count)
    try:
        for _ in range(20):
            orjson.loads(batch)
        assert collections == []
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
        await server.stop()
