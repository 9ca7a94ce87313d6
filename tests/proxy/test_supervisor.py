"""proxy/supervisor.py: restart backoff, the port check, merged metrics from real worker
metric files, reload confirmations, and the admin endpoints of a multi-worker instance.
(The whole process tree is exercised in tests/e2e/test_workers.py.)"""

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy import metrics
from proxy.settings import Listener, load_settings
from proxy.supervisor import (
    EXITED,
    Backoff,
    InstanceCollector,
    Supervisor,
    SupervisorAdmin,
    WorkerProcess,
    _confirmation_problems,
    metrics_parent_directory,
    ports_in_use,
    retire_worker_metrics,
)
from proxy.worker import READY, RELOAD_FAILED, RELOADED, Report

ROOT = Path(__file__).resolve().parent.parent.parent


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_backoff_doubles_while_a_worker_keeps_crashing_and_resets_once_it_ran_a_while():
    backoff = Backoff(initial=0.25, maximum=2.0, stable_after=30.0)
    assert [backoff.next_delay(uptime=0.1) for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert backoff.next_delay(uptime=30.0) == 0.25
    assert backoff.next_delay(uptime=1.0) == 0.5


def test_ports_in_use_names_the_listener_and_the_reason():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problems = ports_in_use(
            [Listener("main", "127.0.0.1", port), Listener("spare", "127.0.0.1", 0)]
        )
    assert problems == [f"listener 'main' cannot use 127.0.0.1:{port} (Address already in use)"]
    assert ports_in_use([Listener("main", "127.0.0.1", port)]) == []


def test_ports_in_use_reports_an_address_that_does_not_resolve():
    (problem,) = ports_in_use([Listener("main", "no-such-host.invalid", 8080)])
    assert problem.startswith("listener 'main' cannot use no-such-host.invalid:8080 (")


_WORKER_METRICS = """
import os
import sys

import proxy.metrics as m

amount = int(sys.argv[1])
m.REQUESTS.labels(route="r", category="analytics", verdict="scrubbed").inc(amount)
m.REQUEST_SECONDS.labels(route="r").observe(0.01)
m.IN_FLIGHT.inc(amount)
m.CONFIG_RELOADS.labels(result="success").inc(100)
m.record_build_info()
print(os.getpid())
"""


def run_worker_metrics(directory: Path, amount: int) -> int:
    """A real process writing metrics as a worker does; its pid."""
    result = subprocess.run(
        [sys.executable, "-c", _WORKER_METRICS, str(amount)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        timeout=120,
        check=True,
    )
    return int(result.stdout)


def exposition(directory: Path) -> dict[str, dict[tuple, float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InstanceCollector(str(directory)))
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), names
    return {
        family.name: {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in family.samples
        }
        for family in families
    }


def test_worker_metrics_are_merged_and_instance_metrics_are_the_supervisors(tmp_path):
    run_worker_metrics(tmp_path, 2)
    second = run_worker_metrics(tmp_path, 3)
    metrics.record_reload("f" * 64)
    merged = exposition(tmp_path)
    key = (("category", "analytics"), ("route", "r"), ("verdict", "scrubbed"))
    assert merged["scrubgate_requests"][("scrubgate_requests_total", key)] == 5
    assert (
        merged["scrubgate_request_duration_seconds"][
            ("scrubgate_request_duration_seconds_count", (("route", "r"),))
        ]
        == 2
    )
    assert merged["scrubgate_in_flight_requests"] == {("scrubgate_in_flight_requests", ()): 5}
    # The workers' 200 reloads are left out: the supervisor's own count is the instance's.
    own = sample("scrubgate_config_reloads_total", result="success")
    assert (
        merged["scrubgate_config_reloads"][
            ("scrubgate_config_reloads_total", (("result", "success"),))
        ]
        == own
    )
    assert merged["scrubgate_workers"] == {("scrubgate_workers", ()): sample("scrubgate_workers")}

    retire_worker_metrics(str(tmp_path), second)
    after = exposition(tmp_path)
    assert after["scrubgate_in_flight_requests"] == {("scrubgate_in_flight_requests", ()): 2}
    assert after["scrubgate_requests"][("scrubgate_requests_total", key)] == 5


def test_exited_workers_counts_are_kept_in_one_set_of_files(tmp_path):
    # A worker that keeps crashing must not leave files behind at every restart, and
    # the instance's counters must never go down when a worker exits.
    pids = [run_worker_metrics(tmp_path, amount) for amount in (1, 2, 3, 4)]
    before = exposition(tmp_path)
    for pid in pids[:3]:
        retire_worker_metrics(str(tmp_path), pid)
    after = exposition(tmp_path)
    key = (("category", "analytics"), ("route", "r"), ("verdict", "scrubbed"))
    assert after["scrubgate_requests"] == before["scrubgate_requests"]
    assert after["scrubgate_requests"][("scrubgate_requests_total", key)] == 10
    assert (
        after["scrubgate_request_duration_seconds"] == before["scrubgate_request_duration_seconds"]
    )
    # Gauges are the live workers' only.
    assert after["scrubgate_in_flight_requests"] == {("scrubgate_in_flight_requests", ()): 4}
    assert sorted(path.name for path in tmp_path.iterdir() if str(pids[3]) not in path.name) == [
        "counter_retired.db",
        "histogram_retired.db",
    ]


async def answered(report: Report | None) -> WorkerProcess:
    worker = WorkerProcess(1)
    worker.awaiting = asyncio.get_running_loop().create_future()
    if report is not None:
        worker.answer(report)
    return worker


@pytest.mark.parametrize(
    ("report", "problems"),
    [
        (Report(RELOADED, digest="d"), []),
        (
            Report(RELOADED, digest="e"),
            [
                "worker 1 loaded another version of the settings file (it changed during the "
                "reload); reload again"
            ],
        ),
        (
            Report(RELOAD_FAILED, problems=("f:1:1: x: y", "f:2:1: z: w")),
            ["worker 1: f:1:1: x: y", "worker 1: f:2:1: z: w"],
        ),
        (
            Report(EXITED),
            ["worker 1 exited during the reload; it loads the file as it starts"],
        ),
        (None, ["worker 1 did not confirm the reload within 60s"]),
    ],
)
async def test_a_reload_succeeds_only_when_a_worker_confirms_the_same_digest(report, problems):
    worker = await answered(report)
    assert _confirmation_problems(worker, "d") == problems


async def test_only_the_first_answer_counts():
    worker = await answered(Report(RELOADED, digest="d"))
    worker.answer(Report(EXITED))
    assert _confirmation_problems(worker, "d") == []
    assert worker.awaiting.result().event == RELOADED != READY


ADMIN_SETTINGS = """
version: 1
workers: 2
listeners: [{name: main, port: 8080}]
admin: {port: 0, token_env: ADMIN_TOKEN}
routes:
  - {name: r, upstream: "http://user:pass@127.0.0.1:9", category: analytics, mode: MODE}
"""


@pytest.fixture
async def admin(tmp_path, monkeypatch):
    """The admin endpoints of a supervisor whose workers are not started."""
    monkeypatch.setenv("ADMIN_TOKEN", "t0ken")
    path = tmp_path / "settings.yaml"
    path.write_text(ADMIN_SETTINGS.replace("MODE", "forward"))
    supervisor = Supervisor(load_settings(path))
    supervisor.metrics_directory = str(tmp_path)
    runner = web.AppRunner(SupervisorAdmin(supervisor).app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
        yield supervisor, path, client
    await runner.cleanup()


async def test_ready_only_when_every_worker_is(admin):
    supervisor, _, client = admin
    async with client.get("/-/ready") as response:
        assert response.status == 503
        assert (await response.json())["workers"] == [
            {"index": 0, "pid": None, "ready": False},
            {"index": 1, "pid": None, "ready": False},
        ]
    supervisor.started.set()
    for worker in supervisor.workers:
        worker.ready = True
    async with client.get("/-/ready") as response:
        assert response.status == 200 and (await response.json())["status"] == "ready"
    supervisor.workers[1].ready = False
    async with client.get("/-/ready") as response:
        assert response.status == 503
    async with client.get("/-/healthy") as response:
        assert response.status == 200


async def test_reload_validates_first_and_answers_like_a_single_process(admin):
    supervisor, path, client = admin
    auth = {"Authorization": "Bearer t0ken"}
    async with client.post("/-/reload") as response:
        assert response.status == 401
    failures = sample("scrubgate_config_reloads_total", result="failure")
    path.write_text(ADMIN_SETTINGS.replace("MODE", "dorp"))
    async with client.post("/-/reload", headers=auth) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["status"] == "failed"
    assert any("routes[0].mode: expected one of" in error for error in answer["errors"])
    assert sample("scrubgate_config_reloads_total", result="failure") == failures + 1
    assert sample("scrubgate_config_last_reload_successful") == 0

    text = ADMIN_SETTINGS.replace("MODE", "drop")
    path.write_text(text)
    async with client.post("/-/reload", headers=auth) as response:
        assert response.status == 200
        assert await response.json() == {"status": "reloaded", "changed": True}
    assert sample("scrubgate_config_last_reload_successful") == 1
    async with client.get("/-/config") as response:
        assert response.status == 401
    async with client.get("/-/config", headers=auth) as response:
        config = await response.json()
    assert (
        config["sha256"] == hashlib.sha256(text.encode()).hexdigest() == supervisor.settings.digest
    )
    assert config["settings"]["routes"][0]["upstream"] == "http://***@127.0.0.1:9"
    assert config["settings"]["routes"][0]["mode"] == "drop"


def test_metrics_directory_goes_to_tmpdir_when_set_else_to_memory(monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert metrics_parent_directory() is None
    monkeypatch.delenv("TMPDIR")
    expected = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
    assert metrics_parent_directory() == expected
