"""proxy/worker.py: reports to the supervisor, reload outcomes reported, and a worker process
that stops when its supervisor goes away."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from proxy.worker import (
    READY,
    RELOAD_FAILED,
    RELOADED,
    ControlChannel,
    Report,
    ReportingSettingsHolder,
)

ROOT = Path(__file__).resolve().parent.parent.parent

SETTINGS = """
version: 1
workers: 1
listeners: [{name: main, port: 0}]
routes:
  - {name: r, upstream: "http://127.0.0.1:9", category: analytics, mode: MODE}
"""


@pytest.mark.parametrize(
    "report",
    [
        Report(READY, digest="a" * 64),
        Report(RELOADED, digest="b" * 64),
        Report(RELOAD_FAILED, problems=("f.yaml:3:5: routes[0].mode: expected ...", "two")),
    ],
)
def test_reports_survive_the_wire(report):
    line = report.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert Report.decode(line) == report


@pytest.mark.parametrize(
    "line", [b"not json\n", b"[1, 2]\n", b'{"event": "restart"}\n', b'{"digest": "x"}\n']
)
def test_anything_else_is_not_a_report(line):
    with pytest.raises(ValueError):
        Report.decode(line)


def read_report(sock: socket.socket) -> Report:
    buffer = b""
    while not buffer.endswith(b"\n"):
        chunk = sock.recv(4096)
        assert chunk, "the channel closed before a whole report arrived"
        buffer += chunk
    return Report.decode(buffer)


def test_every_reload_outcome_is_reported(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.replace("MODE", "forward"))
    supervisor_end, worker_end = socket.socketpair()
    with supervisor_end:
        holder = ReportingSettingsHolder(str(path), ControlChannel(worker_end.detach()))
        path.write_text(SETTINGS.replace("MODE", "drop"))
        assert holder.reload().ok
        report = read_report(supervisor_end)
        assert report == Report(RELOADED, digest=holder.current.settings.digest)
        path.write_text(SETTINGS.replace("MODE", "dorp"))
        assert not holder.reload().ok
        report = read_report(supervisor_end)
        assert report.event == RELOAD_FAILED
        assert any(
            "routes[0].mode" in problem and "did you mean 'drop'" in problem
            for problem in report.problems
        )


def start_worker(tmp_path: Path, settings: str) -> tuple[subprocess.Popen[bytes], socket.socket]:
    path = tmp_path / "settings.yaml"
    path.write_text(settings)
    ours, theirs = socket.socketpair()
    with theirs:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy.worker",
                "--config",
                str(path),
                "--index",
                "3",
                "--control-fd",
                str(theirs.fileno()),
                "--log-format",
                "json",
            ],
            pass_fds=(theirs.fileno(),),
            env={**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
            stderr=subprocess.PIPE,
        )
    return process, ours


def test_a_worker_reports_ready_and_stops_when_its_supervisor_is_gone(tmp_path):
    process, ours = start_worker(tmp_path, SETTINGS.replace("MODE", "forward"))
    try:
        ours.settimeout(60)
        report = read_report(ours)
        assert report.event == READY and report.digest and len(report.digest) == 64
        ours.close()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = [orjson.loads(line) for line in process.stderr.read().splitlines()]
    assert {line["worker"] for line in lines} == {3}
    assert any(line["message"] == "the supervisor is gone; stopping" for line in lines)
    # The worker keeps its metrics in files of the multiprocess directory (in flight: livesum).
    assert (tmp_path / f"gauge_livesum_{process.pid}.db").is_file()


def test_a_worker_whose_settings_do_not_load_exits_1_and_says_why(tmp_path):
    process, ours = start_worker(tmp_path, SETTINGS.replace("MODE", "dorp"))
    with ours:
        assert process.wait(timeout=60) == 1
    lines = [orjson.loads(line) for line in process.stderr.read().splitlines()]
    (line,) = lines
    assert line["level"] == "error" and line["worker"] == 3
    assert line["message"].startswith("the settings file does not load:")
    assert "routes[0].mode: expected one of" in line["message"]
