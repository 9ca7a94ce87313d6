"""Store and forward: scrubbed requests wait on disk while their upstream fails.

Only requests that were scrubbed reach the spool — never a raw body. Each request is one
file (``worker-N/<sequence>.req``, mode 0600, directory 0700) written to a temporary name,
fsynced, renamed into place and its directory fsynced before the client is answered, so a
request a client was told is accepted survives a crash, SIGKILL or power loss.

Delivery is **at least once**: a file is removed only after its upstream answered. If the
process dies between the upstream's answer and the removal, or a delivery is interrupted
by shutdown, that request is sent again after the restart. Requests of one route are
delivered in the order they were spooled; a failing head blocks its route only.

Each worker process owns ``worker-<index>`` (an exclusive ``flock``) and adopts the
directories of workers that no longer exist (an index at or beyond ``workers``), so
lowering ``workers`` loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import random
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

import orjson
import xxhash

from proxy import metrics
from proxy.settings import Spool

log = logging.getLogger("scrubgate.spool")

_MAGIC = b"SGSPOOL1"
_HEADER = struct.Struct(">8sIIQ")
"""Magic, metadata length, body length, xxh3-64 of metadata and body (detects torn files)."""


@dataclass(frozen=True, slots=True)
class SpooledRequest:
    """A scrubbed request as it will be sent upstream (headers already filtered)."""

    route: str
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created: float


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """Where a spooled request lives, without its body."""

    file: Path
    route: str
    size: int
    created: float


class SpoolCorrupt(Exception):
    """A spool file that is not a complete, intact spooled request."""


class SpoolLocked(Exception):
    """Another process already owns this worker's spool directory."""


class SpoolStore:
    """The files on disk. Synchronous: callers run it in a thread."""

    def __init__(self, root: Path, worker: int, fsync: bool, workers: int = 1) -> None:
        self.root = root
        self.own = root / f"worker-{worker}"
        self._fsync = fsync
        self._workers = workers
        self._locks: list[int] = []
        self._sequence = itertools.count(1)

    def open(self) -> list[SpoolEntry]:
        """Take this worker's directory, adopt those of workers that no longer exist (index
        at or beyond the worker count), and list what they hold."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.own.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.own, 0o700)
        if not self._lock(self.own):
            raise SpoolLocked(f"spool directory {self.own} is in use by another process")
        directories = [self.own]
        for sibling in sorted(self.root.glob("worker-*")):
            if self._orphaned(sibling) and self._lock(sibling):
                directories.append(sibling)
        entries = [entry for directory in directories for entry in self._scan(directory)]
        own_sequences = [_sequence(e.file) for e in entries if e.file.parent == self.own]
        # next() on a count is atomic, and writes of different routes run in parallel threads.
        self._sequence = itertools.count(max(own_sequences, default=0) + 1)
        return sorted(entries, key=lambda entry: (entry.created, entry.file.name))

    def close(self) -> None:
        for descriptor in self._locks:
            os.close(descriptor)
        self._locks.clear()

    def write(self, request: SpooledRequest) -> SpoolEntry:
        """Persist ``request``; when this returns, it is on disk (fsynced if configured)."""
        meta = orjson.dumps(
            {
                "route": request.route,
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "created": request.created,
            }
        )
        digest = xxhash.xxh3_64(meta)
        digest.update(request.body)
        header = _HEADER.pack(_MAGIC, len(meta), len(request.body), digest.intdigest())
        final = self.own / f"{next(self._sequence):020d}.req"
        temporary = final.with_suffix(".tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(header)
                file.write(meta)
                file.write(request.body)
                file.flush()
                if self._fsync:
                    os.fsync(file.fileno())
            os.rename(temporary, final)
            if self._fsync:
                _fsync_directory(self.own)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        size = len(header) + len(meta) + len(request.body)
        return SpoolEntry(final, request.route, size, request.created)

    @staticmethod
    def read(entry: SpoolEntry) -> SpooledRequest:
        data = entry.file.read_bytes()
        meta_length, body_length = _check_header(data)
        start = _HEADER.size
        meta_bytes = data[start : start + meta_length]
        body = data[start + meta_length :]
        digest = xxhash.xxh3_64(meta_bytes)
        digest.update(body)
        if len(body) != body_length or digest.intdigest() != _HEADER.unpack_from(data)[3]:
            raise SpoolCorrupt(f"{entry.file.name}: checksum or length mismatch")
        meta = orjson.loads(meta_bytes)
        return SpooledRequest(
            route=meta["route"],
            method=meta["method"],
            path=meta["path"],
            query=meta["query"],
            headers=tuple((name, value) for name, value in meta["headers"]),
            body=body,
            created=meta["created"],
        )

    @staticmethod
    def remove(entry: SpoolEntry) -> None:
        with contextlib.suppress(FileNotFoundError):
            entry.file.unlink()

    def _orphaned(self, directory: Path) -> bool:
        index = directory.name.removeprefix("worker-")
        return index.isdigit() and int(index) >= self._workers and directory.is_dir()

    def _lock(self, directory: Path) -> bool:
        descriptor = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._locks.append(descriptor)
        return True

    def _scan(self, directory: Path) -> list[SpoolEntry]:
        for leftover in directory.glob("*.tmp"):
            # Never renamed into place, so no client was told it was accepted.
            leftover.unlink(missing_ok=True)
        entries = []
        for file in directory.glob("*.req"):
            try:
                entries.append(_read_entry(file))
            except (OSError, SpoolCorrupt, orjson.JSONDecodeError, KeyError):
                log.warning("spool: removing unreadable file %s", file.name)
                metrics.SPOOL_DROPS.labels(route="unknown", reason="corrupt").inc()
                file.unlink(missing_ok=True)
        return entries


def _read_entry(file: Path) -> SpoolEntry:
    with file.open("rb") as handle:
        head = handle.read(_HEADER.size)
        meta_length, body_length = _check_header(head)
        meta = orjson.loads(handle.read(meta_length))
    size = file.stat().st_size
    if size != _HEADER.size + meta_length + body_length:
        raise SpoolCorrupt(f"{file.name}: truncated")
    return SpoolEntry(file, str(meta["route"]), size, float(meta["created"]))


def _check_header(data: bytes) -> tuple[int, int]:
    if len(data) < _HEADER.size:
        raise SpoolCorrupt("truncated header")
    magic, meta_length, body_length, _ = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise SpoolCorrupt("not a scrubgate spool file")
    return meta_length, body_length


def _sequence(file: Path) -> int:
    try:
        return int(file.stem)
    except ValueError:
        return 0


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery attempt ended: ``delivered`` (1xx-3xx), ``rejected`` (a 4xx that a
    retry cannot fix), ``retry`` (unreachable, timeout, 408, 429, 5xx), or a reason the
    request is dropped undelivered (``route_removed``, ``expired``, ``corrupt``)."""

    result: str
    retry_after: float | None = None


Deliver = Callable[[SpooledRequest], Awaitable[Attempt]]


def classify(status: int, retry_after: str | None) -> Attempt:
    """The attempt an upstream status means for a spooled request."""
    if retryable(status):
        return Attempt("retry", parse_retry_after(retry_after))
    return Attempt("rejected" if status >= 400 else "delivered")


def retryable(status: int) -> bool:
    """Statuses worth retrying later: 408, 429 and 5xx except 501 and 505 (never change)."""
    return status in (408, 429) or (status >= 500 and status not in (501, 505))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(eq=False)
class _RouteQueue:
    route: str
    entries: deque[SpoolEntry] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    delivering: SpoolEntry | None = None
    failures: int = 0
    bytes: int = 0
    task: asyncio.Task[None] | None = None


class Spooler:
    """Puts scrubbed requests on disk and delivers them in order per route, with
    exponential backoff and jitter, honouring ``Retry-After`` up to ``retry_max``."""

    def __init__(self, settings: Spool, worker: int, deliver: Deliver, workers: int = 1) -> None:
        assert settings.directory is not None
        self._settings = settings
        self._store = SpoolStore(Path(settings.directory), worker, settings.fsync, workers)
        self._deliver = deliver
        self._queues: dict[str, _RouteQueue] = {}
        self._bytes = 0
        self._opened = False
        self._maintenance: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Future[str | None]] = set()

    @property
    def bytes(self) -> int:
        return self._bytes

    def depth(self) -> int:
        return sum(len(queue.entries) for queue in self._queues.values())

    async def start(self) -> None:
        """Open the spool and resume delivering what an earlier run left. An unusable
        directory is logged and retried on the next request; the proxy keeps serving."""
        await self._open()
        self._maintenance = asyncio.create_task(self._maintain())

    async def stop(self) -> None:
        """Finish writes in progress, then stop delivering; whatever is spooled stays on
        disk for the next start."""
        if self._writes:
            await asyncio.wait(set(self._writes))
        tasks = [queue.task for queue in self._queues.values() if queue.task is not None]
        if self._maintenance is not None:
            tasks.append(self._maintenance)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._store.close()

    def backlog(self, route: str) -> bool:
        """Whether ``route`` has requests waiting (new ones queue behind them, in order)."""
        queue = self._queues.get(route)
        return queue is not None and bool(queue.entries)

    async def put(self, request: SpooledRequest) -> str | None:
        """Spool ``request``. Returns ``None`` once it is safely on disk, else the reason
        it was not spooled (``too_large``, ``full``, ``write_error``), already counted.

        A write, once started, finishes even if the caller is cancelled (shutdown cancels
        requests still in flight at the drain deadline), and :meth:`stop` waits for it."""
        write = asyncio.ensure_future(self._write(request))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        return await asyncio.shield(write)

    async def _write(self, request: SpooledRequest) -> str | None:
        reason = await self._admit(request)
        if reason is not None:
            metrics.SPOOL_DROPS.labels(route=request.route, reason=reason).inc()
        return reason

    async def _admit(self, request: SpooledRequest) -> str | None:
        if not self._opened and not await self._open():
            return "write_error"
        estimate = _HEADER.size + len(request.body) + 256 + sum(map(_pair_size, request.headers))
        if estimate > self._settings.max_bytes:
            return "too_large"
        if not self._make_room(estimate):
            return "full"
        queue = self._queue(request.route)
        self._bytes += estimate
        try:
            async with queue.write_lock:
                entry = await asyncio.to_thread(self._store.write, request)
        except OSError as error:
            self._bytes -= estimate
            log.error("spool: cannot write to %s (%s)", self._store.own, _reason(error))
            return "write_error"
        self._bytes += entry.size - estimate
        self._append(queue, entry)
        metrics.SPOOL_ENQUEUED.labels(route=request.route).inc()
        return None

    async def _open(self) -> bool:
        try:
            entries = await asyncio.to_thread(self._store.open)
        except OSError as error:
            log.error("spool: directory %s unusable (%s)", self._store.root, _reason(error))
            return False
        self._opened = True
        for entry in entries:
            self._bytes += entry.size
            self._append(self._queue(entry.route), entry)
        if entries:
            log.info("spool: resuming delivery of %d request(s)", len(entries))
        return True

    def _make_room(self, size: int) -> bool:
        while self._bytes + size > self._settings.max_bytes:
            if self._settings.on_full == "reject-new" or not self._evict_oldest():
                return False
        return True

    def _evict_oldest(self) -> bool:
        candidates = [
            (queue.entries[index], queue)
            for queue in self._queues.values()
            for index in range(min(2, len(queue.entries)))
            if queue.entries[index] is not queue.delivering
        ]
        if not candidates:
            return False
        entry, queue = min(candidates, key=lambda pair: pair[0].created)
        queue.entries.remove(entry)
        self._forget(queue, entry, drop="evicted")
        self._store.remove(entry)
        return True

    def _queue(self, route: str) -> _RouteQueue:
        queue = self._queues.get(route)
        if queue is None:
            queue = self._queues[route] = _RouteQueue(route)
            queue.task = asyncio.create_task(self._deliver_route(queue))
        return queue

    def _append(self, queue: _RouteQueue, entry: SpoolEntry) -> None:
        queue.entries.append(entry)
        queue.bytes += entry.size
        self._publish(queue)
        queue.wake.set()

    def _forget(self, queue: _RouteQueue, entry: SpoolEntry, drop: str | None = None) -> None:
        queue.bytes -= entry.size
        self._bytes -= entry.size
        self._publish(queue)
        if drop is not None:
            metrics.SPOOL_DROPS.labels(route=queue.route, reason=drop).inc()

    @staticmethod
    def _publish(queue: _RouteQueue) -> None:
        metrics.SPOOL_REQUESTS.labels(route=queue.route).set(len(queue.entries))
        metrics.SPOOL_BYTES.labels(route=queue.route).set(queue.bytes)

    async def _deliver_route(self, queue: _RouteQueue) -> None:
        while True:
            if not queue.entries:
                queue.wake.clear()
                await queue.wake.wait()
                continue
            entry = queue.delivering = queue.entries[0]
            try:
                outcome = await self._attempt(entry)
            finally:
                queue.delivering = None
            if outcome.result == "retry":
                metrics.SPOOL_RETRIES.labels(route=queue.route).inc()
                await asyncio.sleep(self._backoff(queue.failures, outcome.retry_after))
                queue.failures += 1
                continue
            queue.failures = 0
            if queue.entries and queue.entries[0] is entry:
                queue.entries.popleft()
                self._finish(queue, entry, outcome.result)
                await asyncio.to_thread(self._store.remove, entry)

    async def _attempt(self, entry: SpoolEntry) -> Attempt:
        if time.time() - entry.created > self._settings.max_age:
            return Attempt("expired")
        try:
            request = await asyncio.to_thread(self._store.read, entry)
        except (OSError, SpoolCorrupt, orjson.JSONDecodeError, KeyError):
            return Attempt("corrupt")
        return await self._deliver(request)

    def _finish(self, queue: _RouteQueue, entry: SpoolEntry, result: str) -> None:
        if result in ("delivered", "rejected"):
            metrics.SPOOL_DELIVERIES.labels(route=queue.route, result=result).inc()
            self._forget(queue, entry)
        else:
            self._forget(queue, entry, drop=result)
        if result in ("rejected", "corrupt", "route_removed"):
            log.warning("spool: route %s: request not delivered (%s)", queue.route, result)

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        ceiling = min(self._settings.retry_max, self._settings.retry_initial * 2**failures)
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._settings.retry_max))
        return delay

    async def _maintain(self) -> None:
        while True:
            heads = [queue.entries[0].created for queue in self._queues.values() if queue.entries]
            metrics.SPOOL_OLDEST_AGE.set(time.time() - min(heads) if heads else 0)
            await asyncio.sleep(1.0)


def _pair_size(pair: tuple[str, str]) -> int:
    return len(pair[0]) + len(pair[1]) + 8


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__
