"""scrubgate as a separate process (``scrubgate run``), for tests that signal or kill it,
measure the proxy process itself (peak memory, open files) or read what it writes to
stderr.

The in-process fixtures of ``conftest.py`` share the test's interpreter, so its memory
figures would include the test's own allocations; here the proxy is alone in its process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.e2e.payloads import HASH_KEY

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening: (\S+) on [^ ]+:(\d+)")


@dataclass
class ProxyProcess:
    """A running ``scrubgate run``: its URLs, its pid, and every stderr line so far."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int] = field(default_factory=dict)
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['main']}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin']}"

    def status_kib(self, key: str) -> int:
        """A ``/proc/<pid>/status`` figure in KiB (``VmHWM`` peak RSS, ``VmRSS``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise KeyError(key)

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)


def _drain(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    # Always reading keeps the pipe from filling up and stalling the proxy's logging.
    assert process.stderr is not None
    for raw in process.stderr:
        lines.append(raw.decode("utf-8", "replace").rstrip("\n"))


@contextlib.contextmanager
def scrubgate_process(
    settings: str, directory: Path, environ: Mapping[str, str], timeout: float = 60
) -> Iterator[ProxyProcess]:
    """Start ``scrubgate run`` on ``settings`` (listeners on port 0) and yield it once its
    proxy and admin listeners are bound; it is terminated afterwards."""
    path = directory / "settings.yaml"
    path.write_text(settings)
    process = spawn_proxy(path, environ=environ, arguments=("--log-format", "json"))
    running = ProxyProcess(process)
    threading.Thread(target=_drain, args=(process, running.stderr_lines), daemon=True).start()
    try:
        _wait_for_listeners(running, timeout)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_listeners(running: ProxyProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(running.stderr_lines):
            match = _LISTENING.search(line)
            if match:
                running.ports[match.group(1)] = int(match.group(2))
        if {"main", "admin"} <= running.ports.keys():
            return
        if running.process.poll() is not None:
            raise RuntimeError(f"scrubgate exited early:\n{running.stderr}")
        time.sleep(0.05)
    raise RuntimeError(f"scrubgate did not start in {timeout} s:\n{running.stderr}")


def free_port() -> int:
    """A port nothing listens on right now (for settings that need a fixed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_proxy(
    config: Path,
    preexec_fn: Callable[[], None] | None = None,
    environ: Mapping[str, str] | None = None,
    arguments: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Start ``scrubgate run --config config``; the E2E hash key is set unless ``environ``
    overrides it. stderr is a pipe the caller reads (or leaves, for short runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "run", "--config", str(config), *arguments],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "E2E_HASH_KEY": HASH_KEY,
            "SCRUBGATE_HASH_KEY": HASH_KEY,
            **(environ or {}),
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=preexec_fn,
    )


async def wait_ready(admin_port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until the admin listener says ready; fail with the child's stderr if it exits."""
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
            with contextlib.suppress(aiohttp.ClientError):
                async with client.get(f"http://127.0.0.1:{admin_port}/-/ready") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("proxy did not become ready")


async def exit_code(process: subprocess.Popen[bytes], timeout: float = 30) -> int | None:
    """The child's exit code once it exits, or None if it is still running after timeout."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return process.poll()
