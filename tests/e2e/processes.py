"""Run ``scrubgate run`` as a real child process, for tests that signal or kill it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.e2e.payloads import HASH_KEY

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    """A port nothing listens on right now (for settings that need a fixed port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_proxy(
    config: Path, preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "run", "--config", str(config)],
        cwd=ROOT,
        env={**os.environ, "E2E_HASH_KEY": HASH_KEY, "SCRUBGATE_HASH_KEY": HASH_KEY},
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
