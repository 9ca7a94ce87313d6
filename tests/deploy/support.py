"""Helpers for the deploy/ tests: external tools, metric-name extraction, a real exposition."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ALERTS = DEPLOY / "prometheus" / "scrubgate-alerts.yml"
SCRAPE = DEPLOY / "prometheus" / "scrape.example.yml"
DASHBOARD = DEPLOY / "grafana" / "scrubgate.json"
ALERT_TESTS = Path(__file__).resolve().parent / "scrubgate-alerts.test.yml"

_METRIC = re.compile(r"scrubgate_[a-z0-9_]+")
_SERIES_SUFFIX = re.compile(r"_(bucket|sum|count)$")

# Suffixes each family type adds to its name in the exposition (prometheus_client).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("", "_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(name: str, install_hint: str) -> str:
    """Path to a command-line tool, looked up beside this Python (the tools of the `test`
    extra land in the virtualenv's bin/) and then on PATH. Without it the test is skipped,
    except in CI, where that is a failure."""
    beside_python = Path(sys.executable).parent / name
    path = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({install_hint})"
        if in_ci():
            pytest.fail(f"{message}; CI must install it", pytrace=False)
        pytest.skip(message)
    return path


def promtool() -> str:
    return require_tool("promtool", "install it with scripts/ci-tools")


def run_promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [promtool(), *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def referenced_metrics(text: str) -> set[str]:
    """scrubgate metric names in a PromQL expression (or any text), series suffixes stripped."""
    return {_SERIES_SUFFIX.sub("", name) for name in _METRIC.findall(text)}


def registry_metric_names() -> set[str]:
    """Every name a query can use for scrubgate's metrics: families and their series."""
    from proxy.metrics import REGISTRY

    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


# Runs in a fresh interpreter so the test neither depends on nor disturbs what other tests
# in this process have counted in the shared registry.
_TRAFFIC = r"""
import proxy.metrics as m

for verdict in ("forwarded", "scrubbed", "dropped", "blocked", "rejected", "failed", "spooled"):
    m.REQUESTS.labels(route="feedback", category="feedback", verdict=verdict).inc()
m.UNROUTED.labels(listener="main").inc()
m.EVENTS.labels(route="feedback", verdict="kept").inc(3)
m.EVENTS.labels(route="feedback", verdict="dropped").inc(1)
m.RULE_HITS.labels(route="feedback", rule="remove-ip").inc(2)
m.DETECTOR_HITS.labels(route="feedback", detector="email").inc(4)
m.PAYLOAD_ERRORS.labels(route="crash", codec="gzip", reason="max_ratio").inc()
m.PAYLOAD_ERRORS.labels(route="crash", codec="json", reason="unparseable").inc()
m.RECEIVED_BYTES.labels(route="feedback").inc(2048)
m.SENT_BYTES.labels(route="feedback").inc(1024)
for status in (200, 302, 429, 503):
    m.UPSTREAM_RESPONSES.labels(route="feedback", status_class=m.status_class(status)).inc()
for kind in ("error", "timeout"):
    m.UPSTREAM_RESPONSES.labels(route="feedback", status_class=kind).inc()
m.REQUEST_SECONDS.labels(route="feedback").observe(0.012)
m.ENGINE_SECONDS.labels(route="feedback").observe(0.002)
m.UPSTREAM_SECONDS.labels(route="feedback").observe(0.009)
m.BODY_BYTES.labels(route="feedback").observe(2048)
m.IN_FLIGHT.inc()
m.OVERLOAD_REJECTIONS.labels(route="feedback", reason="in_flight").inc()
m.CLIENT_DISCONNECTS.inc()
m.SPOOL_REQUESTS.labels(route="crash").set(3)
m.SPOOL_BYTES.labels(route="crash").set(4096)
m.SPOOL_OLDEST_AGE.set(42)
m.SPOOL_ENQUEUED.labels(route="crash").inc(4)
m.SPOOL_RETRIES.labels(route="crash").inc(7)
m.SPOOL_DELIVERIES.labels(route="crash", result="delivered").inc()
m.SPOOL_DROPS.labels(route="crash", reason="full").inc()
for outcome in ("tunnelled", "intercepted", "failed", "overloaded"):
    m.CONNECT_REQUESTS.labels(listener="egress", destination="vendor.example:443", outcome=outcome).inc()
m.CONNECT_REQUESTS.labels(listener="egress", destination="-", outcome="refused").inc()
m.TUNNEL_BYTES.labels(destination="vendor.example:443", direction="outbound").inc(512)
m.TUNNEL_BYTES.labels(destination="vendor.example:443", direction="inbound").inc(4096)
m.OPEN_TUNNELS.inc()
m.record_settings_in_force("0" * 64)
m.record_reload(None)
m.record_reload("1" * 64)
m.record_build_info()
m.WORKERS.set(2)
m.WORKER_RESTARTS.labels(worker="1").inc()
"""
_EXPOSITION = (
    "import sys\nfrom prometheus_client import generate_latest\n"
    + _TRAFFIC
    + "sys.stdout.buffer.write(generate_latest(m.REGISTRY))\n"
)
# What the supervisor of a multi-worker scrubgate serves, from its workers' metric files.
_SUPERVISOR_EXPOSITION = r"""
import sys

from prometheus_client import CollectorRegistry, generate_latest

import proxy.metrics as m
from proxy.supervisor import InstanceCollector

m.record_reload(None)
m.record_reload("1" * 64)
m.record_build_info()
m.WORKERS.set(2)
m.WORKER_RESTARTS.labels(worker="1").inc()
registry = CollectorRegistry(auto_describe=False)
registry.register(InstanceCollector(sys.argv[1]))
sys.stdout.buffer.write(generate_latest(registry))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> bytes:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def render_exposition() -> bytes:
    """scrubgate's /metrics body after some traffic on every metric."""
    return _python(_EXPOSITION)


def render_multi_worker_exposition(directory: Path) -> bytes:
    """The /metrics body of a supervisor whose two workers both had that traffic."""
    workers = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for _ in range(2):
        _python(_TRAFFIC, env=workers)
    supervisor = {
        name: value for name, value in os.environ.items() if name != "PROMETHEUS_MULTIPROC_DIR"
    }
    return _python(_SUPERVISOR_EXPOSITION, str(directory), env=supervisor)


@contextlib.contextmanager
def running_scrubgate(settings: Path, environ: dict[str, str]) -> Iterator[dict[str, int]]:
    """A real ``scrubgate run`` on ``settings`` (ports 0); yields the bound port of each
    listener and of ``admin``, learnt from its log, and stops it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "run", "--config", str(settings)],
        cwd=REPO,
        env={**os.environ, **environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read_log() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_log, daemon=True).start()
    ports: dict[str, int] = {}
    log: list[str] = []
    try:
        while "admin" not in ports:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                pytest.fail("scrubgate did not start within 60 s", pytrace=False)
            if line is None:
                pytest.fail("scrubgate exited:\n" + "".join(log), pytrace=False)
            log.append(line)
            match = re.search(r"listening: (\S+) on \S+:(\d+)", line)
            if match:
                ports[match.group(1)] = int(match.group(2))
        yield ports
    finally:
        process.terminate()
        process.wait(timeout=30)


def http_status(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    """Status code of a request to ``url`` (errors included)."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
