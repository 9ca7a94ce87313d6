"""The spool on real files: format, permissions, locking, recovery, ordering, backoff,
capacity and expiry. Delivery goes to an injected coroutine that records what it gets."""

import asyncio
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.metrics import REGISTRY
from proxy.settings import Spool
from proxy.spool import (
    Attempt,
    SpoolCorrupt,
    SpooledRequest,
    Spooler,
    SpoolLocked,
    SpoolStore,
    classify,
    parse_retry_after,
    retryable,
)


def request(route: str = "r", body: bytes = b'{"n":1}', created: float | None = None):
    return SpooledRequest(
        route=route,
        method="POST",
        path="/v1/batch",
        query="a=1",
        headers=(("Content-Type", "application/json"), ("Authorization", "Basic eA==")),
        body=body,
        created=time.time() if created is None else created,
    )


def settings(directory: Path, **overrides) -> Spool:
    values = {
        "directory": str(directory),
        "max_bytes": 2**20,
        "on_full": "reject-new",
        "max_age": 3600.0,
        "fsync": True,
        "retry_initial": 0.01,
        "retry_max": 0.05,
    }
    return Spool(**{**values, **overrides})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Recorder:
    """A delivery target answering from a script of results (then ``delivered``)."""

    def __init__(self, *script: Attempt) -> None:
        self.script = list(script)
        self.received: list[SpooledRequest] = []
        self.calls = 0
        self.times: list[float] = []
        self.idle = asyncio.Event()

    async def __call__(self, spooled: SpooledRequest) -> Attempt:
        self.calls += 1
        self.times.append(time.monotonic())
        attempt = self.script.pop(0) if self.script else Attempt("delivered")
        if attempt.result == "delivered":
            self.received.append(spooled)
        return attempt


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- store -----------------------------------------------------------------------------------


def test_store_round_trips_a_request_with_private_permissions(tmp_path):
    store = SpoolStore(tmp_path / "spool", worker=0, fsync=True)
    assert store.open() == []
    original = request(body=b"\x00\xffbinary")
    entry = store.write(original)
    assert store.read(entry) == original
    assert stat.S_IMODE(entry.file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.own.stat().st_mode) == 0o700
    assert entry.size == entry.file.stat().st_size
    store.remove(entry)
    assert not entry.file.exists()
    store.close()


def test_reopened_store_lists_entries_in_spool_order_and_continues_the_sequence(tmp_path):
    store = SpoolStore(tmp_path, worker=0, fsync=False)
    store.open()
    written = [store.write(request(body=str(n).encode(), created=1000.0 + n)) for n in range(3)]
    store.close()
    again = SpoolStore(tmp_path, worker=0, fsync=False)
    listed = again.open()
    assert [entry.file for entry in listed] == [entry.file for entry in written]
    assert again.write(request()).file.name > written[-1].file.name
    again.close()


def test_a_second_process_cannot_take_the_same_worker_directory(tmp_path):
    first = SpoolStore(tmp_path, worker=0, fsync=False)
    first.open()
    with pytest.raises(SpoolLocked, match="in use by another process"):
        SpoolStore(tmp_path, worker=0, fsync=False).open()
    first.close()


def test_directories_of_workers_beyond_the_count_are_adopted_but_not_current_ones(tmp_path):
    left_behind = []
    for index in (1, 2, 3):
        orphan = SpoolStore(tmp_path, worker=index, fsync=False, workers=4)
        orphan.open()
        left_behind.append(orphan.write(request(route=f"old{index}")))
        orphan.close()
    # Now two workers: worker 1 (not started yet) keeps its directory, 2 and 3 are orphans.
    adopter = SpoolStore(tmp_path, worker=0, fsync=False, workers=2)
    assert sorted(entry.file for entry in adopter.open()) == [e.file for e in left_behind[1:]]
    second = SpoolStore(tmp_path, worker=1, fsync=False, workers=2)
    assert [entry.file for entry in second.open()] == [left_behind[0].file]
    adopter.close()
    second.close()


def test_an_adopted_directory_is_not_adopted_twice(tmp_path):
    orphan = SpoolStore(tmp_path, worker=5, fsync=False)
    orphan.open()
    orphan.write(request())
    orphan.close()
    first = SpoolStore(tmp_path, worker=0, fsync=False)
    assert len(first.open()) == 1
    other = SpoolStore(tmp_path, worker=1, fsync=False, workers=2)
    assert other.open() == []
    first.close()
    other.close()


def test_corrupt_and_half_written_files_are_removed_on_open(tmp_path):
    store = SpoolStore(tmp_path, worker=0, fsync=False)
    store.open()
    good = store.write(request())
    truncated = store.write(request(body=b"x" * 100))
    truncated.file.write_bytes(truncated.file.read_bytes()[:-10])
    (store.own / "00000000000000000099.req").write_bytes(b"not a spool file at all")
    (store.own / "00000000000000000100.tmp").write_bytes(b"partial")
    store.close()
    before = sample("scrubgate_spool_drops_total", route="unknown", reason="corrupt")
    again = SpoolStore(tmp_path, worker=0, fsync=False)
    assert [entry.file for entry in again.open()] == [good.file]
    assert sorted(path.name for path in again.own.iterdir()) == [".lock", good.file.name]
    assert sample("scrubgate_spool_drops_total", route="unknown", reason="corrupt") - before == 2
    again.close()


def test_a_flipped_body_byte_fails_the_checksum(tmp_path):
    store = SpoolStore(tmp_path, worker=0, fsync=False)
    store.open()
    entry = store.write(request(body=b"abcdef"))
    data = bytearray(entry.file.read_bytes())
    data[-1] ^= 0x01
    entry.file.write_bytes(bytes(data))
    with pytest.raises(SpoolCorrupt, match="checksum"):
        store.read(entry)
    store.close()


# --- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (302, "delivered"),
        (400, "rejected"),
        (413, "rejected"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (501, "rejected"),
        (505, "rejected"),
    ],
)
def test_classify_statuses(status, result):
    assert classify(status, None).result == result
    assert retryable(status) is (result == "retry")


def test_retry_after_accepts_seconds_and_http_dates():
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=120), usegmt=True)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(later, now=now) == pytest.approx(120, abs=1)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert classify(429, "3") == Attempt("retry", 3.0)


@given(st.text(max_size=40))
def test_retry_after_never_raises(value):
    result = parse_retry_after(value)
    assert result is None or result >= 0


# --- spooler ----------------------------------------------------------------------------------


async def test_requests_are_delivered_in_order_per_route_and_removed(tmp_path):
    recorder = Recorder()
    spooler = Spooler(settings(tmp_path), 0, recorder)
    await spooler.start()
    for n in range(5):
        assert await spooler.put(request(route="a", body=b"%d" % n)) is None
    await wait_until(lambda: len(recorder.received) == 5)
    assert [item.body for item in recorder.received] == [b"0", b"1", b"2", b"3", b"4"]
    await wait_until(lambda: not spooler.backlog("a"))
    assert spooler.bytes == 0
    assert list((tmp_path / "worker-0").glob("*.req")) == []
    await spooler.stop()


async def test_a_failing_head_is_retried_with_backoff_and_blocks_only_its_route(tmp_path):
    recorder = Recorder(Attempt("retry"), Attempt("retry"), Attempt("retry", retry_after=0.2))
    spooler = Spooler(settings(tmp_path, retry_max=1.0), 0, recorder)
    await spooler.start()
    retries = sample("scrubgate_spool_retries_total", route="slow")
    await spooler.put(request(route="slow", body=b"first"))
    await spooler.put(request(route="slow", body=b"second"))
    await wait_until(lambda: len(recorder.received) == 2)
    assert [item.body for item in recorder.received] == [b"first", b"second"]
    assert sample("scrubgate_spool_retries_total", route="slow") - retries == 3
    # The third failure asked for 0.2 s; the delivery after it honoured that.
    assert recorder.times[3] - recorder.times[2] >= 0.2
    await spooler.stop()


async def test_backoff_grows_exponentially_up_to_retry_max(tmp_path):
    spooler = Spooler(settings(tmp_path, retry_initial=1.0, retry_max=8.0), 0, Recorder())
    for failures, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        delays = [spooler._backoff(failures, None) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert spooler._backoff(0, 5.0) == 5.0
    assert spooler._backoff(0, 3600.0) == 8.0


async def test_reject_new_refuses_what_does_not_fit(tmp_path):
    recorder = Recorder(*[Attempt("retry")] * 1000)
    spooler = Spooler(settings(tmp_path, max_bytes=4096, retry_initial=5, retry_max=5), 0, recorder)
    await spooler.start()
    drops = sample("scrubgate_spool_drops_total", route="r", reason="full")
    results = [await spooler.put(request(body=b"x" * 1000)) for _ in range(5)]
    assert results[:3] == [None, None, None]
    assert results[3:] == ["full", "full"]
    assert sample("scrubgate_spool_drops_total", route="r", reason="full") - drops == 2
    assert await spooler.put(request(body=b"x" * 5000)) == "too_large"
    assert spooler.depth() == 3
    await spooler.stop()


async def test_drop_oldest_evicts_waiting_requests_but_not_the_one_being_delivered(tmp_path):
    release = asyncio.Event()
    attempts: list[bytes] = []

    async def deliver(spooled):
        attempts.append(spooled.body[:1])
        await release.wait()
        return Attempt("delivered")

    spooler = Spooler(settings(tmp_path, max_bytes=4096, on_full="drop-oldest"), 0, deliver)
    await spooler.start()
    evicted = sample("scrubgate_spool_drops_total", route="r", reason="evicted")
    for n in range(5):
        body = b"%d" % n + b"x" * 1000
        assert await spooler.put(request(body=body, created=time.time() - 10 + n)) is None
        await wait_until(lambda: attempts == [b"0"])
    assert sample("scrubgate_spool_drops_total", route="r", reason="evicted") - evicted == 2
    bodies = [SpoolStore.read(entry).body[:1] for entry in spooler._queues["r"].entries]
    assert bodies == [b"0", b"3", b"4"]
    release.set()
    await wait_until(lambda: spooler.depth() == 0)
    assert attempts == [b"0", b"3", b"4"]
    await spooler.stop()


async def test_expired_and_orphaned_requests_are_dropped_and_counted(tmp_path):
    def deliver_or_route_gone(spooled):
        if spooled.route == "gone":
            return Attempt("route_removed")
        return Attempt("delivered")

    async def deliver(spooled):
        return deliver_or_route_gone(spooled)

    spooler = Spooler(settings(tmp_path, max_age=60.0), 0, deliver)
    await spooler.start()
    expired = sample("scrubgate_spool_drops_total", route="r", reason="expired")
    removed = sample("scrubgate_spool_drops_total", route="gone", reason="route_removed")
    await spooler.put(request(created=time.time() - 120))
    await spooler.put(request(route="gone"))
    await wait_until(lambda: spooler.depth() == 0)
    assert sample("scrubgate_spool_drops_total", route="r", reason="expired") - expired == 1
    assert (
        sample("scrubgate_spool_drops_total", route="gone", reason="route_removed") - removed == 1
    )
    await spooler.stop()


async def test_a_restarted_spooler_delivers_what_the_previous_one_left(tmp_path):
    stuck = Recorder(*[Attempt("retry")] * 1000)
    first = Spooler(settings(tmp_path, retry_initial=5, retry_max=5), 0, stuck)
    await first.start()
    for n in range(3):
        await first.put(request(route="a" if n % 2 else "b", body=b"%d" % n))
    await first.stop()
    recorder = Recorder()
    second = Spooler(settings(tmp_path), 0, recorder)
    await second.start()
    await wait_until(lambda: len(recorder.received) == 3)
    assert sorted(item.body for item in recorder.received) == [b"0", b"1", b"2"]
    assert sample("scrubgate_spool_requests", route="a") == 0
    await second.stop()


async def test_an_unusable_directory_fails_each_put_without_raising(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the spool directory should be")
    spooler = Spooler(settings(blocker / "spool"), 0, Recorder())
    await spooler.start()
    before = sample("scrubgate_spool_drops_total", route="r", reason="write_error")
    assert await spooler.put(request()) == "write_error"
    assert sample("scrubgate_spool_drops_total", route="r", reason="write_error") - before == 1
    await spooler.stop()


async def test_gauges_report_depth_bytes_and_oldest_age(tmp_path):
    spooler = Spooler(
        settings(tmp_path, retry_initial=5, retry_max=5), 0, Recorder(*[Attempt("retry")] * 9)
    )
    await spooler.start()
    await spooler.put(request(route="g", created=time.time() - 30))
    await spooler.put(request(route="g"))
    assert sample("scrubgate_spool_requests", route="g") == 2
    assert sample("scrubgate_spool_bytes", route="g") == spooler.bytes > 0
    await wait_until(lambda: sample("scrubgate_spool_oldest_age_seconds") >= 30)
    await spooler.stop()
    assert os.listdir(tmp_path / "worker-0")
