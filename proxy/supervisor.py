"""Several worker processes on the same listener ports, and one admin listener over them.

``scrubgate run`` with ``workers`` > 1 runs a :class:`Supervisor`. It starts one
``python -m proxy.worker`` process per worker (see :mod:`proxy.worker`); each serves every
listener on the same ports with SO_REUSEPORT, so the kernel spreads connections over them.
The supervisor itself serves no telemetry. It:

- serves the admin listener: ``/metrics`` merges the workers' metrics (prometheus_client's
  multiprocess mode, in a private temporary directory) with the instance metrics only the
  supervisor keeps (see ``metrics.INSTANCE_METRICS``); ``/-/ready`` answers 200 only while
  every worker is ready;
- reloads as one transaction across processes: it validates the settings file itself; an
  invalid file is answered with its problems and no worker is disturbed; a valid one is
  loaded by every worker (SIGHUP), and the reload succeeds once every worker reports the
  same SHA-256. A worker that starts on a different version of the file (it was changed
  since) makes the supervisor reload all workers, so they always serve the same settings;
- starts a worker that exits unexpectedly again, with exponential backoff;
- on SIGTERM or SIGINT, sends SIGTERM to every worker, waits for them to drain and exit
  (SIGKILL after ``limits.drain_timeout`` plus :data:`STOP_GRACE`), and exits 0.

Workers report over a socket pair (:class:`proxy.worker.Report`, one JSON line each); the
supervisor talks to workers with signals only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from proxy import metrics
from proxy.admin import AdminEndpoints
from proxy.settings import Listener, LoadedSettings, SettingsError, load_settings
from proxy.state import ReloadResult, log_reload
from proxy.worker import READY, RELOAD_FAILED, RELOADED, Report

log = logging.getLogger("scrubgate.supervisor")

RELOAD_TIMEOUT = 60.0
"""Seconds every worker has to confirm a reload."""
STOP_GRACE = 30.0
"""Seconds beyond ``limits.drain_timeout`` a worker has to spool what is unsent and exit
after SIGTERM before it is killed."""
EXITED = "exited"
"""The report a worker that exits while a reload waits for it stands for."""


@dataclass
class Backoff:
    """Delays before starting a crashed worker again: ``initial`` doubling up to
    ``maximum`` while it keeps crashing, back to ``initial`` once a worker ran for
    ``stable_after`` seconds. A worker that cannot start never spins."""

    initial: float = 0.25
    maximum: float = 30.0
    stable_after: float = 30.0
    crashes: int = 0

    def next_delay(self, uptime: float) -> float:
        if uptime >= self.stable_after:
            self.crashes = 0
        delay = min(self.maximum, self.initial * 2**self.crashes)
        self.crashes += 1
        return delay


@dataclass
class WorkerProcess:
    """One worker slot: the process currently in it and what it reported."""

    index: int
    backoff: Backoff = field(default_factory=Backoff)
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    ready: bool = False
    digest: str | None = None
    awaiting: asyncio.Future[Report] | None = None
    """Set while a reload waits for this worker's report."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, signum: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)  # type: ignore[union-attr]

    def answer(self, report: Report) -> None:
        """Hand ``report`` to the reload waiting for it, if any."""
        if self.awaiting is not None and not self.awaiting.done():
            self.awaiting.set_result(report)


class Supervisor:
    """Runs ``settings.workers`` worker processes and the admin listener until stopped."""

    def __init__(self, settings: LoadedSettings, worker_options: Sequence[str] = ()) -> None:
        """``worker_options``: extra command-line options for every worker (logging)."""
        self.settings = settings
        self._worker_options = tuple(worker_options)
        self.workers = [WorkerProcess(index) for index in range(settings.workers)]
        self.metrics_directory = ""
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failed = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[object]] = set()
        self._admin: web.AppRunner | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def ready(self) -> bool:
        return (
            self.started.is_set()
            and not self._stopping.is_set()
            and all(worker.ready for worker in self.workers)
        )

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0); 1 if the workers cannot start."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stopping.set)
        loop.add_signal_handler(signal.SIGINT, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_in_background, "SIGHUP")
        admin = self.settings.admin
        problems = ports_in_use(
            [*self.settings.listeners, Listener("admin", admin.host, admin.port)]
        )
        if problems:
            log.error("cannot start: %s", "; ".join(problems))
            return 1
        self.metrics_directory = tempfile.mkdtemp(
            prefix="scrubgate-metrics-", dir=metrics_parent_directory()
        )
        metrics.WORKERS.set(0)
        keepers: list[asyncio.Task[None]] = []
        try:
            await self._serve_admin()
            keepers = [asyncio.create_task(self._keep_running(one)) for one in self.workers]
            if await self._wait_until_started():
                log.info("%d workers ready", len(self.workers))
                await self._serve_until_stopped()
            await self._stop_workers(keepers)
            return 1 if self._failed.is_set() else 0
        finally:
            if self._admin is not None:
                await self._admin.cleanup()
            shutil.rmtree(self.metrics_directory, ignore_errors=True)

    async def _serve_until_stopped(self) -> None:
        watcher = (
            asyncio.create_task(self._watch_settings()) if self.settings.reload.watch else None
        )
        await self._stopping.wait()
        if watcher is not None:
            watcher.cancel()
        log.info("shutting down")

    async def _wait_until_started(self) -> bool:
        """True once every worker is ready; False if one exits (or cannot start) first,
        or on a stop."""
        waits = [
            asyncio.create_task(event.wait())
            for event in (self.started, self._failed, self._stopping)
        ]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if self._failed.is_set():
            log.error("a worker exited before it was ready; stopping")
            return False
        return self.started.is_set()

    # --- worker processes ------------------------------------------------------------

    async def _keep_running(self, worker: WorkerProcess) -> None:
        """Run ``worker``'s slot: start it, and start it again whenever it exits
        unexpectedly, until the supervisor stops."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._spawn(worker)
            except OSError as error:
                log.error("cannot start worker %d (%s); stopping", worker.index, error)
                self._failed.set()
                self._stopping.set()
                return
            if self._stopping.is_set():
                worker.signal(signal.SIGTERM)
            assert worker.process is not None
            status = await worker.process.wait()
            self._forget(worker)
            if self._stopping.is_set():
                return
            if not self.started.is_set():
                self._failed.set()
                return
            delay = worker.backoff.next_delay(uptime=loop.time() - worker.started_at)
            log.error(
                "worker %d (pid %d) exited unexpectedly (%s); starting it again in %.2fs",
                worker.index,
                worker.process.pid,
                _describe_status(status),
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            metrics.WORKER_RESTARTS.labels(worker=str(worker.index)).inc()

    async def _spawn(self, worker: WorkerProcess) -> None:
        """Start a process in the slot, with one end of a new socket pair for its reports."""
        ours, theirs = socket.socketpair()
        try:
            worker.process = await self._start_process(worker.index, theirs.fileno())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        worker.started_at = asyncio.get_running_loop().time()
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)
        reader, writer = await asyncio.open_connection(sock=ours)
        self._in_background(self._read_reports(worker, reader, writer))

    async def _start_process(self, index: int, control: int) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy.worker",
            "--config",
            self.settings.file,
            "--index",
            str(index),
            "--control-fd",
            str(control),
            *self._worker_options,
            pass_fds=(control,),
            env=self._worker_environment(index),
            # Ctrl-C reaches the supervisor only; it stops the workers in order.
            start_new_session=True,
        )

    def _worker_environment(self, index: int) -> dict[str, str]:
        return {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_directory,
            "SCRUBGATE_WORKER_INDEX": str(index),
        }

    def _forget(self, worker: WorkerProcess) -> None:
        """Bookkeeping after a worker process exited."""
        assert worker.process is not None
        try:
            retire_worker_metrics(self.metrics_directory, worker.process.pid)
        except OSError as error:
            # Its files stay as they are: its counts are still merged, only not compacted.
            log.warning("metrics of worker %d not compacted (%s)", worker.index, error.strerror)
        worker.ready = False
        worker.answer(Report(EXITED))
        self._count_ready()

    async def _read_reports(
        self, worker: WorkerProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while line := await reader.readline():
                try:
                    report = Report.decode(line)
                except ValueError:
                    log.error("worker %d sent something that is not a report", worker.index)
                    continue
                self._on_report(worker, report)
        finally:
            writer.close()

    def _on_report(self, worker: WorkerProcess, report: Report) -> None:
        if report.event in (READY, RELOADED):
            worker.digest = report.digest
        if report.event != READY:
            worker.answer(report)
            return
        worker.ready = True
        log.info("worker %d (pid %s) ready", worker.index, worker.pid)
        self._count_ready()
        if all(other.ready for other in self.workers):
            self.started.set()
        if report.digest != self.settings.digest:
            self.reload_in_background(f"worker {worker.index} started on a changed settings file")

    def _count_ready(self) -> None:
        metrics.WORKERS.set(sum(worker.ready for worker in self.workers))

    async def _stop_workers(self, keepers: list[asyncio.Task[None]]) -> None:
        self._stopping.set()
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        if not keepers:
            return
        deadline = self.settings.limits.drain_timeout + STOP_GRACE
        _, late = await asyncio.wait(keepers, timeout=deadline)
        if late:
            for worker in self.workers:
                if worker.alive:
                    log.error("worker %d did not stop in %gs; killing it", worker.index, deadline)
                    worker.signal(signal.SIGKILL)
            await asyncio.wait(late)

    def _in_background(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- reload ----------------------------------------------------------------------

    def reload_in_background(self, cause: str) -> None:
        if not self._stopping.is_set():
            self._in_background(self.reload(cause))

    async def reload(self, cause: str) -> ReloadResult:
        """Validate the settings file, then have every ready worker load it. Only one
        reload runs at a time."""
        async with self._reload_lock:
            result = await self._reload()
        log_reload(log, result, cause)
        return result

    async def _reload(self) -> ReloadResult:
        try:
            settings = await asyncio.to_thread(load_settings, self.settings.file)
        except SettingsError as error:
            metrics.record_reload(None)
            return ReloadResult(ok=False, problems=tuple(map(str, error.problems)))
        problems = await self._reload_workers(settings.digest)
        if problems:
            metrics.record_reload(None)
            return ReloadResult(ok=False, problems=problems)
        if settings.workers != len(self.workers):
            log.warning(
                "workers changed to %d; this takes effect when scrubgate restarts",
                settings.workers,
            )
        changed = settings.digest != self.settings.digest
        self.settings = settings
        metrics.record_reload(settings.digest)
        return ReloadResult(ok=True, changed=changed)

    async def _reload_workers(self, digest: str) -> tuple[str, ...]:
        """SIGHUP every ready worker and collect what keeps the reload from succeeding.
        Workers not ready yet load the file when they start."""
        loop = asyncio.get_running_loop()
        workers = [worker for worker in self.workers if worker.ready]
        if not workers:
            return ()
        for worker in workers:
            worker.awaiting = loop.create_future()
            worker.signal(signal.SIGHUP)
        await asyncio.wait(
            [worker.awaiting for worker in workers if worker.awaiting], timeout=RELOAD_TIMEOUT
        )
        problems: list[str] = []
        for worker in workers:
            problems.extend(_confirmation_problems(worker, digest))
            worker.awaiting = None
        return tuple(problems)

    async def _watch_settings(self) -> None:
        """Reload when the settings file's content changes (``reload.watch``); a broken
        version is reported once, not on every poll."""
        failed_digest = None
        while True:
            await asyncio.sleep(self.settings.reload.interval)
            try:
                digest = hashlib.sha256(Path(self.settings.file).read_bytes()).hexdigest()
            except OSError:
                continue
            if digest in (self.settings.digest, failed_digest):
                continue
            result = await self.reload("settings file changed")
            failed_digest = None if result.ok else digest

    # --- admin listener --------------------------------------------------------------

    async def _serve_admin(self) -> None:
        admin = self.settings.admin
        self._admin = web.AppRunner(SupervisorAdmin(self).app(), access_log=None)
        await self._admin.setup()
        site = web.TCPSite(self._admin, admin.host, admin.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1] if sockets else admin.port
        log.info("listening: admin on %s:%d", admin.host, port)


def metrics_parent_directory() -> str | None:
    """Where the private metrics directory is made: ``$TMPDIR`` when set, else
    ``/dev/shm`` (memory: the workers write metrics without disk I/O, and it stays writable
    on a read-only root filesystem), else the system's temporary directory (``None``)."""
    if "TMPDIR" not in os.environ and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return None


def _confirmation_problems(worker: WorkerProcess, digest: str) -> list[str]:
    awaiting = worker.awaiting
    if awaiting is None or not awaiting.done():
        return [f"worker {worker.index} did not confirm the reload within {RELOAD_TIMEOUT:g}s"]
    report = awaiting.result()
    if report.event == EXITED:
        return [f"worker {worker.index} exited during the reload; it loads the file as it starts"]
    if report.event == RELOAD_FAILED:
        return [f"worker {worker.index}: {problem}" for problem in report.problems]
    if report.digest != digest:
        return [
            f"worker {worker.index} loaded another version of the settings file (it changed "
            "during the reload); reload again"
        ]
    return []


def _describe_status(status: int) -> str:
    if status < 0:
        return f"signal {signal.Signals(-status).name}"
    return f"exit status {status}"


def ports_in_use(listeners: Sequence[Listener]) -> list[str]:
    """A problem for each listener whose address cannot be bound (already in use, no
    permission, unknown host): workers would all fail on it, or silently share it with
    another process that also uses SO_REUSEPORT."""
    problems: list[str] = []
    for listener in listeners:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                listener.host, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as error:
            reason = error.strerror or str(error)
            problems.append(
                f"listener {listener.name!r} cannot use {listener.host}:{listener.port} ({reason})"
            )
    return problems


_RETIRED = "retired"
"""Stands for the pid in the names of the files that hold exited workers' counts."""
_SUMMED_KINDS = ("counter", "histogram", "summary")


def retire_worker_metrics(directory: str, pid: int) -> None:
    """Forget the metric files of the exited worker ``pid`` but keep its counts.

    Every worker process writes files of its own, named after its pid, so a worker that
    keeps crashing would leave a new set at every restart, and every scrape reads them
    all. Its live gauges go (``mark_process_dead``); its counters and histograms are
    added into one file per kind that no worker writes (``counter_retired.db``), so the
    instance's totals never go down, and its own files are deleted."""
    mark_process_dead(pid, directory)
    for kind in _SUMMED_KINDS:
        exited = Path(directory) / f"{kind}_{pid}.db"
        if not exited.exists():
            continue
        retired = MmapedDict(str(Path(directory) / f"{kind}_{_RETIRED}.db"))
        try:
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(exited)):
                total, _ = retired.read_value(key)
                retired.write_value(key, total + value, timestamp)
        finally:
            retired.close()
        exited.unlink()


class InstanceCollector:
    """The instance's metrics: the workers' merged from the multiprocess directory, plus
    the supervisor's own :data:`proxy.metrics.INSTANCE_METRICS`."""

    def __init__(self, directory: str) -> None:
        self._workers = MultiProcessCollector(None, path=directory)
        self._own = {
            family.name for metric in metrics.INSTANCE_METRICS for family in metric.describe()
        }

    def collect(self) -> Iterator[Metric]:
        for family in self._workers.collect():
            if family.name not in self._own:
                yield family
        for metric in metrics.INSTANCE_METRICS:
            yield from metric.collect()


class SupervisorAdmin(AdminEndpoints):
    """The admin endpoints of a multi-worker instance, for all workers at once: metrics
    merged from the workers, ready only while every worker is, reloads confirmed by all."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(InstanceCollector(supervisor.metrics_directory))

    def settings(self) -> LoadedSettings:
        return self._supervisor.settings

    def readiness(self) -> tuple[int, dict[str, Any]]:
        workers = [
            {"index": worker.index, "pid": worker.pid, "ready": worker.ready}
            for worker in self._supervisor.workers
        ]
        if not self._supervisor.ready:
            status = "stopping" if self._supervisor.stopping else "starting"
            return 503, {"status": status, "workers": workers}
        return 200, {"status": "ready", "workers": workers}

    async def reload_settings(self) -> ReloadResult:
        return await self._supervisor.reload("POST /-/reload")
