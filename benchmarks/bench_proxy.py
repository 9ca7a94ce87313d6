"""End to end: scrubgate against two baseline proxies, all measured in the same run.

    .venv/bin/python benchmarks/bench_proxy.py [--quick] [--duration S] [--json out.json]
        [--scenarios direct,passthrough,roundtrip,forward,scrub,scrub-2w] [--sizes 127,33]
        [--encodings plain,gzip] [--connections 16] [--generator auto|wrk|builtin]
        [--rounds N]

On 127.0.0.1, for every batch (20 Segment-style events, about 127 KB and 33 KB) and
encoding (plain, gzip) and each proxy under test -- a plain aiohttp passthrough (the
baseline), a proxy that only parses and re-serializes the JSON with orjson (the scrub
target's reference), scrubgate with the route in ``forward`` mode and scrubgate
scrubbing with the ``default`` policy of config.example.yaml -- it starts the proxy in its
own process pinned to one CPU, while this process (the sink) and the load generator
(``wrk`` when installed, else ``loadgen.py``) share another CPU. It first checks that
the sink receives what each proxy must send (for scrub: the same events with no personal
value left; Content-Encoding preserved) and aborts otherwise. Then it measures:

* closed loop at N connections: req/s, events/s, p50/p99 latency, proxy CPU per request;
* memory: RSS growth under M concurrent requests over M (per in-flight request, against
  the JSON size), and RSS growth over the timed run;
* for the 33 KB batch, open loop at half the measured maximum rate: p99 latency from the
  scheduled send time, minus that of the sink alone at the same rate (added latency).

``scrub-2w`` is ``scrub`` with ``workers: 2``, not pinned (by default for the first batch
and encoding only): the CPU seconds of each worker over the timed run give the scaling two
workers would reach with a core each and the load generator elsewhere (see report.py).

``direct`` is the load generator against the sink with no proxy: the ceiling of the load
side. The ratios between proxies of the same run are the figures to compare.

With ``--rounds N`` the timed closed loop of every scenario runs N times per batch and
encoding, interleaved (A, B, C, A, B, C, ...) on the same proxy processes; each figure is
the median of its rounds, and each ratio the median of the per-round ratios (3 rounds for
the headline ratios: the noise of this kind of machine moves one run by 10-15%).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gzip
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import load as loading  # noqa: E402
from benchmarks.loadgen import build_request, connect, run_fast  # noqa: E402
from benchmarks.payloads import analytics_batch  # noqa: E402
from benchmarks.procstat import (  # noqa: E402
    connections_on_port,
    cpu_busy_seconds,
    cpu_seconds_each,
    maps_library,
    own_cpu_seconds,
    process_tree,
    rss_bytes,
)
from benchmarks.report import median_of, ratios, render, targets  # noqa: E402
from benchmarks.sink import Sink  # noqa: E402
from benchmarks.verify import VerificationFailed, check_delivery  # noqa: E402

SCENARIOS = ("direct", "passthrough", "roundtrip", "forward", "scrub", "scrub-2w")
WORKERS = {"scrub-2w": 2}
"""scrubgate scenarios run with more than one worker process, on every CPU (not pinned)."""
EVENTS_PER_REQUEST = 20
REFERENCE_PAYLOADS = ROOT.parent / "shared" / "reference-payloads"
GENERATED_SEED = 7
"""The seed of the first generated batch (``payloads.analytics_batch``'s default)."""
OPEN_LOOP_BATCH = "33 KB"
DISTURBED = 0.2
"""Share of the proxy CPU taken by other processes above which a run is repeated."""
HASH_KEY = "b" * 64  # a benchmark-only key; scrubgate needs one for `hash` rules
T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark cannot go on: a proxy did not start or did not answer."""


@dataclass(frozen=True, slots=True)
class Options:
    scenarios: tuple[str, ...]
    sizes: tuple[str, ...]
    encodings: tuple[str, ...]
    duration: float
    warmup: float
    memory_duration: float
    connections: int
    memory_connections: int
    open_connections: int
    retries: int
    rounds: int
    """Timed closed-loop runs of every scenario per batch and encoding, interleaved."""
    generator: str
    payloads: str
    distinct: int
    """Different batches per size, sent in turn (generated payloads only)."""
    baseline_loop: str
    workers_every_batch: bool
    """Whether the scenarios of several workers run for every batch and encoding (named
    in ``--scenarios``) or, by default, for the first only."""


@dataclass(frozen=True, slots=True)
class Batch:
    label: str
    source: str
    documents: tuple[bytes, ...]
    """The batches of this size, sent in turn; one unless ``--distinct``."""

    @property
    def document(self) -> bytes:
        return self.documents[0]


@dataclass(slots=True)
class Bench:
    """What every measurement shares: options, sink, CPUs, scratch directory."""

    options: Options
    sink: Sink
    sink_url: str
    scratch: Path
    proxy_cpus: set[int] | None
    all_cpus: set[int]
    baseline_loop: str = "asyncio"


@dataclass(frozen=True, slots=True)
class Target:
    """A proxy under test (or, for ``direct``, the sink itself) ready for requests."""

    scenario: str
    url: str
    pids: list[int]
    cpus: set[int] | None = None
    """The CPUs the proxy may run on, whose time other processes took is measured."""


# --- payloads -------------------------------------------------------------------------------


def batches(source: str, sizes: tuple[str, ...], distinct: int = 1) -> list[Batch]:
    """The batches to send: the reference files of ../shared when present (``auto``, and
    one batch per size), else generated ones of the same shape: ``distinct`` of them per
    size, each from its own seed (other ids, e-mails, URLs and IPs)."""
    if source == "reference" and distinct > 1:
        raise BenchError("--distinct needs generated payloads: there is one reference batch")
    use_reference = source == "reference" or (
        source == "auto" and distinct == 1 and (REFERENCE_PAYLOADS / "batch20.json").exists()
    )
    chosen = []
    for size in sizes:
        lean = size == "33"
        if use_reference:
            path = REFERENCE_PAYLOADS / ("batch20_lean.json" if lean else "batch20.json")
            chosen.append(Batch(f"{size} KB", "reference", (path.read_bytes(),)))
        else:
            documents = tuple(
                orjson.dumps(analytics_batch(seed=GENERATED_SEED + n, lean=lean))
                for n in range(distinct)
            )
            chosen.append(Batch(f"{size} KB", "generated", documents))
    return chosen


def encode(document: bytes, encoding: str) -> bytes:
    return gzip.compress(document, compresslevel=6, mtime=0) if encoding == "gzip" else document


# --- processes under test -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrubgate_settings(
    port: int, admin_port: int, sink_url: str, workers: int = 1
) -> dict[str, Any]:
    """config.example.yaml (its policies, organization, detectors, limits) with one
    listener and two routes to the sink: ``/fwd`` in forward mode, ``/scrub`` scrubbing
    with the default policy; ``workers`` processes. No audit log, no reload watching."""
    settings = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    route = {"upstream": sink_url, "category": "analytics", "format": "json"}
    settings |= {
        "listeners": [{"name": "main", "host": "127.0.0.1", "port": port}],
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "audit": {"file": ""},
        "reload": {"watch": False},
        "routes": [
            {"name": "forward", "match": {"path_prefix": "/fwd"}, "mode": "forward", **route},
            {"name": "scrub", "match": {"path_prefix": "/scrub"}, "policy": "default", **route},
        ],
    }
    if workers_setting_exists():
        settings["workers"] = workers
    elif workers > 1:
        raise BenchError("this scrubgate has no `workers` setting: it cannot run scrub-2w")
    return settings


def workers_setting_exists() -> bool:
    """Whether this checkout's scrubgate has a top-level ``workers`` setting."""
    from proxy.settings import SETTINGS

    return "workers" in SETTINGS.fields


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start a proxy: its command, the URL to send batches to, and for scrubgate
    the admin URL answering 200 once every worker is ready."""

    command: list[str]
    url: str
    ready_url: str | None


def proxy_command(scenario: str, bench: Bench) -> Launch:
    """How to start ``scenario``'s proxy."""
    port = free_port()
    if scenario in ("passthrough", "roundtrip"):
        module = "benchmarks.passthrough" if scenario == "passthrough" else "benchmarks.roundtrip"
        command = [sys.executable, "-m", module, "--port", str(port)]
        command += ["--upstream", bench.sink_url, "--loop", bench.baseline_loop]
        return Launch(command, f"http://127.0.0.1:{port}/v1/batch", None)
    admin_port = free_port()
    workers = WORKERS.get(scenario, 1)
    settings = bench.scratch / f"scrubgate-{port}.yaml"
    settings.write_text(
        yaml.safe_dump(scrubgate_settings(port, admin_port, bench.sink_url, workers))
    )
    command = [sys.executable, "-m", "proxy.cli", "run", "--config", str(settings)]
    return Launch(
        [*command, "--log-level", "warning"],
        scrubgate_url(port, scenario),
        f"http://127.0.0.1:{admin_port}/-/ready",
    )


def scrubgate_url(port: int, scenario: str) -> str:
    return f"http://127.0.0.1:{port}/{'fwd' if scenario == 'forward' else 'scrub'}/v1/batch"


@contextlib.asynccontextmanager
async def started(scenario: str, bench: Bench) -> AsyncIterator[Target]:
    """Run ``scenario``'s proxy for the duration of the block: pinned to the proxy CPU, or
    with several workers on any CPU. Its output goes to a file of the scratch directory,
    quoted if it fails to start."""
    if scenario == "direct":
        yield Target(scenario, f"{bench.sink_url}/v1/batch", [])
        return
    launch = proxy_command(scenario, bench)
    cpus = proxy_cpus(scenario, bench)
    output = bench.scratch / f"{scenario}.log"
    with output.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *launch.command,
            cwd=ROOT,
            env=os.environ | {"SCRUBGATE_HASH_KEY": HASH_KEY, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=log,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    pids = [process.pid]
    try:
        await wait_ready(launch, process, output)
        pids = process_tree(process.pid)
        yield Target(scenario, launch.url, pids, cpus)
    finally:
        await stop(process, pids[1:])


def proxy_cpus(scenario: str, bench: Bench) -> set[int] | None:
    """The CPUs ``scenario``'s proxy may run on: the proxy CPU or, with several workers,
    every CPU (the load side's too); None on a one-CPU machine, where nothing is pinned.
    Set even for every CPU: the proxy would otherwise inherit the load side's one."""
    if not bench.proxy_cpus:
        return None
    return bench.all_cpus if scenario in WORKERS else bench.proxy_cpus


async def wait_ready(launch: Launch, process: asyncio.subprocess.Process, output: Path) -> None:
    """Wait until the proxy accepts connections and, for scrubgate, until every worker is
    ready (its admin ``/-/ready`` answers 200); raise if it exits or 60 s pass first."""
    port = int(launch.url.split(":")[2].split("/")[0])
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            tail = "\n".join(output.read_text(errors="replace").splitlines()[-20:])
            raise BenchError(
                f"the proxy for {launch.url} exited with {process.returncode}:\n{tail}"
            )
        if await accepts(port) and (launch.ready_url is None or await answers_ok(launch.ready_url)):
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"{launch.url} not listening or not ready after 60 s")


async def accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def answers_ok(url: str) -> bool:
    def get() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status == 200
        except OSError:  # refused, or an HTTPError such as 503 while starting
            return False

    return await asyncio.to_thread(get)


async def stop(process: asyncio.subprocess.Process, workers: list[int]) -> None:
    """Stop the proxy; its ``workers`` too when it had to be killed (they run in sessions
    of their own, so they would outlive it)."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- measuring ------------------------------------------------------------------------------


async def verify(target: Target, bench: Bench, batch: Batch, encoding: str) -> None:
    """Send each batch of ``batch`` through ``target`` and check what the sink received."""
    for document in batch.documents:
        await verify_one(target, bench, batch.label, document, encoding)


async def verify_one(
    target: Target, bench: Bench, batch_label: str, document: bytes, encoding: str
) -> None:
    body = encode(document, encoding)
    headers = ["Content-Type: application/json"]
    if encoding != "plain":
        headers.append(f"Content-Encoding: {encoding}")
    (connection,) = await connect(target.url, 1)
    bench.sink.capture, bench.sink.last = True, None
    try:
        status = await connection.exchange(build_request(target.url, body, headers))
    finally:
        bench.sink.capture = False
        connection.close()
    label = f"{batch_label} {encoding}"
    if status != 200 or bench.sink.last is None:
        raise BenchError(f"{target.scenario}, {label}: answered {status}, the sink got nothing")
    check_delivery(
        target.scenario,
        label,
        document,
        body,
        None if encoding == "plain" else encoding,
        bench.sink.last,
    )


async def with_peak_rss(work: Awaitable[T], pids: list[int]) -> tuple[T, int]:
    """Await ``work`` while sampling the RSS of ``pids``; returns its result and the peak."""
    task = asyncio.ensure_future(work)
    peak = rss_bytes(pids)
    while not task.done():
        await asyncio.wait({task}, timeout=0.01)
        peak = max(peak, rss_bytes(pids))
    return task.result(), peak


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU time of the processes under test during a run (``each``: per process, in the
    order of the target's pids), their share of the wall time, and the share of the CPUs
    they may use that other processes of the machine took meanwhile."""

    seconds: float
    each: list[float]
    utilization: float
    other_load: float | None


async def with_cpu(work: Awaitable[T], target: Target) -> tuple[T, CpuUse]:
    """Await ``work`` and return its result with the CPU use of ``target`` meanwhile.
    When the target shares CPUs with the sink and the load generator (it is not pinned),
    their CPU time is not counted as other processes' either."""
    cpus = target.cpus
    load_side = bool(cpus and cpus & os.sched_getaffinity(0))
    started, each, bench_own = time.monotonic(), cpu_seconds_each(target.pids), own_cpu_seconds()
    busy = cpu_busy_seconds(cpus) if cpus else 0.0
    result = await work
    wall = time.monotonic() - started
    after = cpu_seconds_each(target.pids)
    each = [max(0.0, end - start) for end, start in zip(after, each, strict=True)]
    own = sum(each)
    other = None
    if cpus:
        others = cpu_busy_seconds(cpus) - busy - own
        if load_side:
            others -= own_cpu_seconds() - bench_own
        other = min(1.0, max(0.0, others) / (wall * len(cpus)))  # tick jitter
    return result, CpuUse(own, each, own / wall, other)


async def least_disturbed(
    run: Callable[[], Awaitable[T]], target: Target, bench: Bench
) -> tuple[T, CpuUse]:
    """Run, and run again (up to ``--retries`` times) while other processes took more than
    a fifth of the proxy CPU; keep the least disturbed run. Noise only ever slows a run."""
    best: tuple[T, CpuUse] | None = None
    for _ in range(1 + bench.options.retries):
        outcome = await with_cpu(run(), target)
        if best is None or (outcome[1].other_load or 0) < (best[1].other_load or 0):
            best = outcome
        if (outcome[1].other_load or 0) <= DISTURBED:
            break
    assert best is not None
    return best


@dataclass(slots=True)
class Subject:
    """A proxy under test for one batch and encoding, verified and warmed up: what it is
    sent, its memory probe, and its timed closed-loop rounds so far."""

    target: Target
    load: loading.Load
    body_bytes: int
    idle_rss: int
    peak_rss: int
    rss_before: int
    rounds: list[dict[str, Any]] = field(default_factory=list)


async def prepare(target: Target, bench: Bench, batch: Batch, encoding: str) -> Subject:
    """Verify what ``target`` delivers (a proxy), warm it up at one connection, and probe
    its memory at ``--memory-connections``: all before its first timed round."""
    options = bench.options
    bodies = [encode(document, encoding) for document in batch.documents]
    body_files = []
    for number, body in enumerate(bodies):
        body_file = bench.scratch / f"{batch.label.split()[0]}-{encoding}-{number}.body"
        body_file.write_bytes(body)
        body_files.append(body_file)
    load = loading.Load(target.url, tuple(body_files), None if encoding == "plain" else encoding)
    if target.pids:
        await verify(target, bench, batch, encoding)
    await loading.closed_loop(options.generator, load, 1, options.warmup)
    idle = rss_bytes(target.pids)
    _, peak = await with_peak_rss(
        loading.closed_loop(
            options.generator, load, options.memory_connections, options.memory_duration
        ),
        target.pids,
    )
    return Subject(target, load, len(bodies[0]), idle, peak, rss_bytes(target.pids))


async def timed_round(subject: Subject, bench: Bench) -> None:
    """One timed closed-loop run of ``subject`` (repeated while disturbed: see
    ``least_disturbed``), added to its rounds."""
    options, target = bench.options, subject.target
    (closed, connections), cpu = await least_disturbed(
        lambda: with_connections(
            loading.closed_loop(
                options.generator, subject.load, options.connections, options.duration
            ),
            target,
        ),
        target,
        bench,
    )
    subject.rounds.append(
        {
            "requests": closed.requests,
            "requests_per_s": closed.rate,
            "events_per_s": closed.rate * EVENTS_PER_REQUEST,
            "latency_ms": closed.latency_ms,
            "cpu_ms_per_request": cpu.seconds * 1000 / closed.requests if target.pids else None,
            "cpu_utilization": cpu.utilization if target.pids else None,
            "other_load": cpu.other_load if target.pids else None,
            "processes": processes(target, cpu, connections),
            "seconds": closed.elapsed,
        }
    )


async def summary(subject: Subject, bench: Bench, batch: Batch, encoding: str) -> dict[str, Any]:
    """``subject``'s result: the medians of its rounds (each figure on its own), the rounds
    themselves, its memory figures and, for the open-loop batch, its added latency at half
    the median req/s."""
    target = subject.target
    closed = median_of(subject.rounds)
    result: dict[str, Any] = {
        "scenario": target.scenario,
        "batch": batch.label,
        "source": batch.source,
        "encoding": encoding,
        "body_bytes": subject.body_bytes,
        "json_bytes": len(batch.document),
        "verified": bool(target.pids),
        **closed,
        "rounds": subject.rounds,
        "memory": None,
        "open_loop": None,
    }
    if target.pids:
        connections = bench.options.memory_connections
        result["memory"] = memory(subject, connections, len(batch.document))
        if batch.label == OPEN_LOOP_BATCH:
            rate = closed["requests_per_s"] / 2
            result["open_loop"] = await added_latency(bench, subject.load, rate, target)
    return result


def memory(subject: Subject, connections: int, json_bytes: int) -> dict[str, Any]:
    """The memory probe's figures (``connections`` in flight), and the RSS growth over all
    the timed rounds."""
    per_request = (subject.peak_rss - subject.idle_rss) / connections
    return {
        "idle_rss_bytes": subject.idle_rss,
        "peak_rss_bytes": subject.peak_rss,
        "connections": connections,
        "per_request_bytes": per_request,
        "per_request_x_body": per_request / json_bytes,
        "growth_bytes": rss_bytes(subject.target.pids) - subject.rss_before,
        "run_seconds": sum(measured["seconds"] for measured in subject.rounds),
    }


async def measure_cell(
    bench: Bench, batch: Batch, encoding: str, scenarios: list[str]
) -> list[dict[str, Any]]:
    """Measure ``scenarios`` on one batch and encoding: start every proxy, verify, warm up
    and probe each, then run the timed closed loops in ``--rounds`` interleaved rounds
    (round 1: A, B, C; round 2: A, B, C; ...) on the same processes, so that the runs of
    one round are measured close in time; then each one's summary."""
    async with contextlib.AsyncExitStack() as stack:
        subjects = []
        for scenario in scenarios:
            target = await stack.enter_async_context(started(scenario, bench))
            subjects.append(await prepare(target, bench, batch, encoding))
        for _ in range(bench.options.rounds):
            for subject in subjects:
                await timed_round(subject, bench)
        return [await summary(subject, bench, batch, encoding) for subject in subjects]


async def with_connections(work: Awaitable[T], target: Target) -> tuple[T, list[int] | None]:
    """Await ``work``; for a proxy of several processes, also how many client connections
    each held (sampled every 0.1 s; the sample with the most, as the load generator opens
    its connections after it started). None for one process."""
    task = asyncio.ensure_future(work)
    if len(target.pids) < 2:
        return await task, None
    port = int(target.url.split(":")[2].split("/")[0])
    most = connections_on_port(target.pids, port)
    while not task.done():
        await asyncio.wait({task}, timeout=0.1)
        most = max(most, connections_on_port(target.pids, port), key=sum)
    return task.result(), most


def processes(target: Target, cpu: CpuUse, connections: list[int] | None) -> dict[str, Any] | None:
    """For a proxy of several processes (a supervisor first, then its workers): the CPU
    seconds of each over the timed run, and the client connections each held."""
    if connections is None:
        return None
    return {
        "supervisor_cpu_seconds": cpu.each[0],
        "worker_cpu_seconds": cpu.each[1:],
        "worker_connections": connections[1:],
    }


async def added_latency(
    bench: Bench, load: loading.Load, rate: float, target: Target
) -> dict[str, float | None]:
    """Open-loop latency through the proxy at ``rate``, and the sink's alone at that rate."""
    options = bench.options
    through, cpu = await least_disturbed(
        lambda: loading.open_loop(load, rate, options.open_connections, options.duration),
        target,
        bench,
    )
    direct_load = replace(load, url=f"{bench.sink_url}/v1/batch")
    direct = await loading.open_loop(direct_load, rate, options.open_connections, options.duration)
    return {
        "rate": rate,
        "p50_ms": through.latency_ms["p50"],
        "p99_ms": through.latency_ms["p99"],
        "direct_p99_ms": direct.latency_ms["p99"],
        "added_p99_ms": through.latency_ms["p99"] - direct.latency_ms["p99"],
        "cpu_utilization": cpu.utilization,
        "other_load": cpu.other_load,
    }


# --- the run --------------------------------------------------------------------------------


async def preflight(bench: Bench, chosen: list[Batch]) -> bool | None:
    """Before any timing: check scrubgate's forward and scrub deliveries for every batch
    and encoding (raises on the first failure), and whether scrubgate runs on uvloop."""
    selected = {name.removesuffix("-2w") for name in bench.options.scenarios}
    scenarios = [name for name in ("forward", "scrub") if name in selected]
    if not scenarios:
        return None
    async with started("scrub", bench) as scrubgate:
        port = int(scrubgate.url.split(":")[2].split("/")[0])
        for scenario in scenarios:
            target = replace(scrubgate, scenario=scenario, url=scrubgate_url(port, scenario))
            for batch in chosen:
                for encoding in bench.options.encodings:
                    await verify(target, bench, batch, encoding)
        return maps_library(scrubgate.pids, "uvloop")


async def run(options: Options) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    proxy_cpus = {cpus[0]} if len(cpus) > 1 else None
    if proxy_cpus:
        os.sched_setaffinity(0, {cpus[1]})  # the sink, and the generator it starts
    sink = Sink()
    sink_port = await sink.start()
    with tempfile.TemporaryDirectory(prefix="scrubgate-bench-") as scratch:
        sink_url = f"http://127.0.0.1:{sink_port}"
        bench = Bench(options, sink, sink_url, Path(scratch), proxy_cpus, set(cpus))
        chosen = batches(options.payloads, options.sizes, options.distinct)
        scrubgate_uvloop = await preflight(bench, chosen)
        bench.baseline_loop = _baseline_loop(options.baseline_loop, scrubgate_uvloop)
        results = []
        for cell, (batch, encoding) in enumerate(
            (batch, encoding) for batch in chosen for encoding in options.encodings
        ):
            scenarios = [
                scenario
                for scenario in options.scenarios
                # by default, the scenarios of several workers for the first cell only
                if scenario not in WORKERS or cell == 0 or options.workers_every_batch
            ]
            results += await measure_cell(bench, batch, encoding, scenarios)
    await sink.close()
    ratio_rows = ratios(results)
    return {
        "machine": machine(bench, scrubgate_uvloop, cpus),
        "options": {
            "connections": options.connections,
            "memory_connections": options.memory_connections,
            "duration": options.duration,
            "retries": options.retries,
            "rounds": options.rounds,
            "payloads": sorted({batch.source for batch in chosen}),
            "distinct": options.distinct,
        },
        "results": results,
        "ratios": ratio_rows,
        "targets": targets(results, ratio_rows),
    }


def _baseline_loop(choice: str, scrubgate_uvloop: bool | None) -> str:
    """``auto``: the baselines run on the event loop scrubgate runs on, for a fair ratio."""
    if choice != "auto":
        return choice
    return "uvloop" if scrubgate_uvloop else "asyncio"


def machine(bench: Bench, scrubgate_uvloop: bool | None, cpus: list[int]) -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    pinning = (
        f"proxy on CPU {min(bench.proxy_cpus)}, sink and load generator on CPU {cpus[1]}"
        " (two workers: on any CPU)"
        if bench.proxy_cpus
        else "one CPU: nothing pinned"
    )
    return {
        "date": datetime.date.today().isoformat(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "pinning": pinning,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": version("aiohttp"),
        "orjson": version("orjson"),
        "hyperscan": version("hyperscan"),
        "uvloop": version("uvloop"),
        "scrubgate_uvloop": scrubgate_uvloop,
        "baseline_loop": bench.baseline_loop,
        "generator": generator_version(bench.options.generator),
        "workers_setting": (
            "workers: 1 (scrub-2w: workers: 2)"
            if workers_setting_exists()
            else "none (one process)"
        ),
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def generator_version(generator: str) -> str:
    if generator != "wrk":
        return "bundled loadgen.py (closed and open loop)"
    completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    name = " ".join((completed.stdout or completed.stderr).split()[:2]) or "wrk"
    return f"{name} (closed loop; open loop: bundled loadgen.py)"


# --- command line ---------------------------------------------------------------------------


def _choices(allowed: tuple[str, ...]) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [part for part in chosen if part not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"{','.join(unknown) or 'nothing'}: choose from {','.join(allowed)}"
            )
        return chosen

    return parse


def _positive(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of at least 1")
    return count


def parse_options(argv: list[str] | None = None) -> tuple[Options, str | None]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s per measurement")
    parser.add_argument("--duration", type=float, help="seconds per timed run (default 5)")
    parser.add_argument(
        "--scenarios",
        type=_choices(SCENARIOS),
        help=f"default: all ({','.join(SCENARIOS)}), {','.join(WORKERS)} for the first batch"
        " and encoding only; named here, for every one",
    )
    parser.add_argument("--sizes", type=_choices(("127", "33")), default=("127", "33"))
    parser.add_argument("--encodings", type=_choices(("plain", "gzip")), default=("plain", "gzip"))
    parser.add_argument("--connections", type=int, default=16, help="closed-loop connections")
    parser.add_argument("--memory-connections", type=int, default=64)
    parser.add_argument(
        "--retries",
        type=int,
        help="repeat a timed run disturbed by other processes up to N times (default 2; quick: 0)",
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=1,
        help="timed closed-loop runs of every scenario per batch and encoding, interleaved;"
        " figures and ratios are their medians (default 1; 3 for the headline ratios)",
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "builtin"), default="auto")
    parser.add_argument("--payloads", choices=("auto", "reference", "generated"), default="auto")
    parser.add_argument(
        "--distinct",
        type=_positive,
        default=1,
        help="different generated batches per size, sent in turn, so that the hash and"
        " generalize memos hit only on values that repeat (default 1: the same batch,"
        " they always hit; above 1, payloads auto means generated)",
    )
    parser.add_argument(
        "--baseline-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop of the baseline proxies (auto: the one scrubgate runs on)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    duration = args.duration or (1.0 if args.quick else 5.0)
    options = Options(
        scenarios=args.scenarios or SCENARIOS,
        sizes=args.sizes,
        encodings=args.encodings,
        duration=duration,
        warmup=min(duration, 0.3 if args.quick else 1.0),
        memory_duration=min(duration, 0.5 if args.quick else 2.0),
        connections=args.connections,
        memory_connections=args.memory_connections,
        open_connections=64,
        retries=args.retries if args.retries is not None else (0 if args.quick else 2),
        rounds=args.rounds,
        generator=_generator(parser, args.generator),
        payloads=args.payloads,
        distinct=args.distinct,
        baseline_loop=args.baseline_loop,
        workers_every_batch=args.scenarios is not None,
    )
    return options, args.json


def _generator(parser: argparse.ArgumentParser, choice: str) -> str:
    try:
        return loading.pick_generator(choice)
    except loading.LoadError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    options, json_file = parse_options(argv)
    try:
        report = run_fast(run(options))
    except (BenchError, VerificationFailed, loading.LoadError) as error:
        print(f"benchmark aborted: {error}", file=sys.stderr)
        return 1
    print(render(report))
    if json_file:
        Path(json_file).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
