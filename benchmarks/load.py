"""Running the load generator from the benchmark: ``wrk`` or the bundled ``loadgen``.

Both run as child processes (they inherit the benchmark's CPU affinity, so they share the
load core with the sink) and are awaited without blocking the benchmark's event loop,
which serves the sink meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_post.lua"


class LoadError(RuntimeError):
    """The load generator failed or the target answered errors."""


@dataclass(frozen=True, slots=True)
class Load:
    """What to send: the body files (sent in turn), their Content-Encoding, and to which
    URL."""

    url: str
    body_files: tuple[Path, ...]
    encoding: str | None


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    errors: int
    elapsed: float
    latency_ms: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


def pick_generator(choice: str) -> str:
    """``auto``: wrk when it is on PATH, else the bundled generator."""
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "builtin"
    if choice == "wrk" and not shutil.which("wrk"):
        raise LoadError("--generator wrk: wrk is not installed (apt-get install wrk)")
    return choice


async def closed_loop(generator: str, load: Load, connections: int, duration: float) -> LoadResult:
    """Saturate the target with ``connections`` keep-alive connections for ``duration`` s."""
    if generator == "wrk":
        return await _wrk(load, connections, duration)
    return await _builtin(load, ["--connections", str(connections), "--duration", str(duration)])


async def open_loop(load: Load, rate: float, connections: int, duration: float) -> LoadResult:
    """Send ``rate`` requests/s at fixed times for ``duration`` s (bundled generator only:
    wrk has no constant-rate mode)."""
    options = ["--connections", str(connections), "--duration", str(duration)]
    return await _builtin(load, [*options, "--rate", str(rate)])


async def _builtin(load: Load, options: list[str]) -> LoadResult:
    headers = ["--header", "Content-Type: application/json"]
    if load.encoding:
        headers += ["--header", f"Content-Encoding: {load.encoding}"]
    command = [sys.executable, "-m", "benchmarks.loadgen", load.url]
    command += [argument for path in load.body_files for argument in ("--body", str(path))]
    output = await _run([*command, *headers, *options], os.environ | {"PYTHONPATH": str(ROOT)})
    result = json.loads(output)
    return _checked(
        load,
        LoadResult(result["requests"], result["errors"], result["elapsed"], result["latency_ms"]),
    )


async def _wrk(load: Load, connections: int, duration: float) -> LoadResult:
    seconds = max(1, math.ceil(duration))  # wrk takes whole seconds
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    environment = os.environ | {
        "BENCH_BODY_FILES": "\n".join(str(path) for path in load.body_files),
        "BENCH_CONTENT_ENCODING": load.encoding or "",
    }
    output = await _run([*command, "-s", str(WRK_SCRIPT), load.url], environment)
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
            break
    else:
        raise LoadError(f"wrk printed no result for {load.url}")
    latency = {name: result[f"{name}_us"] / 1000 for name in ("p50", "p90", "p99", "p999", "max")}
    answered = result["requests"] - result["errors"]
    return _checked(
        load, LoadResult(answered, result["errors"], result["elapsed_us"] / 1e6, latency)
    )


async def _run(command: list[str], environment: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise LoadError(f"{command[0]} exited with {process.returncode}: {detail[0]}")
    return stdout.decode()


def _checked(load: Load, result: LoadResult) -> LoadResult:
    if result.errors or not result.requests:
        raise LoadError(
            f"{load.url}: {result.errors} failed requests, {result.requests} answered 200"
        )
    return result
