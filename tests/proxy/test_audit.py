"""proxy/audit.py: one JSON line per forwarded request, paths and counts, never values;
files 0600, rotated by size with a bounded number of copies."""

import calendar
import os
import stat
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.outcome import Outcome
from proxy.audit import AuditLog, audit_path, field_paths


@pytest.fixture
def permissive_umask():
    """A umask that would leave new files world-readable, so 0600 must come from the code."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _record(log: AuditLog, *, status: int = 200, outcome: Outcome | None = None) -> None:
    log.record(
        route="analytics",
        category="clickstream",
        upstream="collector.example",
        status=status,
        outcome=outcome or Outcome(events_in=1, events_out=1, changes=[]),
        fields=["userId"],
    )


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_record_is_one_json_line_of_paths_rule_ids_and_counts(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    outcome = Outcome(
        rule_hits=Counter({"hash-ids": 3, "redact-ip": 1}),
        detector_hits=Counter({"email": 2, "credit_card": 1}),
        events_in=4,
        events_out=3,
        changes=[
            ("redact-ip", "context.ip"),
            ("hash-ids", "batch[*].userId"),
            ("hash-ids", "batch[*].userId"),
            ("hash-ids", "anonymousId"),
        ],
    )
    before = int(time.time())
    log.record(
        route="analytics",
        category="clickstream",
        upstream="collector.example",
        status=202,
        outcome=outcome,
        fields=["userId", "batch[*].event", "anonymousId"],
    )
    after = int(time.time())
    log.close()
    (entry,) = _lines(path)
    stamp = entry.pop("time")
    assert before <= calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) <= after
    assert entry == {
        "route": "analytics",
        "category": "clickstream",
        "upstream": "collector.example",
        "status": 202,
        "events": {"in": 4, "out": 3},
        "fields_sent": ["anonymousId", "batch[*].event", "userId"],
        "changes": [
            {"rule": "hash-ids", "path": "anonymousId", "count": 1},
            {"rule": "hash-ids", "path": "batch[*].userId", "count": 2},
            {"rule": "redact-ip", "path": "context.ip", "count": 1},
        ],
        "detector_hits": {"credit_card": 1, "email": 2},
    }


def test_an_outcome_without_explained_changes_records_an_empty_list(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    _record(log, outcome=Outcome(events_in=2, events_out=2, changes=None))
    log.close()
    (entry,) = _lines(path)
    assert entry["changes"] == [] and entry["detector_hits"] == {}
    assert entry["events"] == {"in": 2, "out": 2}


def test_records_append_one_line_each_in_order(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    for status in (200, 204, 502):
        _record(log, status=status)
    log.close()
    assert [entry["status"] for entry in _lines(path)] == [200, 204, 502]
    assert path.read_text().endswith("}\n")


def test_the_file_is_created_readable_by_its_owner_only(tmp_path, permissive_umask):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    _record(log)
    log.close()
    assert _mode(path) == 0o600


def test_an_existing_world_readable_file_is_made_private_and_appended_to(
    tmp_path, permissive_umask
):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier":true}\n')
    path.chmod(0o644)
    log = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    assert _mode(path) == 0o600
    _record(log, status=201)
    log.close()
    assert _lines(path) == [{"earlier": True}, _lines(path)[1]]
    assert _lines(path)[1]["status"] == 201


def test_rotation_keeps_the_configured_copies_each_within_max_bytes(tmp_path, permissive_umask):
    path = tmp_path / "audit.jsonl"
    max_bytes, backups = 1024, 3
    log = AuditLog(str(path), max_bytes=max_bytes, backups=backups)
    statuses = list(range(100, 400))
    for status in statuses:
        _record(log, status=status)
    log.close()

    names = sorted(entry.name for entry in tmp_path.iterdir())
    assert names == ["audit.jsonl"] + [f"audit.jsonl.{index}" for index in (1, 2, 3)]
    files = [Path(f"{path}.{index}") for index in range(backups, 0, -1)] + [path]
    for file in files:
        assert file.stat().st_size <= max_bytes
        assert _mode(file) == 0o600
    kept = [entry["status"] for file in files for entry in _lines(file)]
    # Oldest first across .3, .2, .1 and the live file: a contiguous run ending with the
    # last record; everything before it went with the deleted copies.
    assert kept == statuses[-len(kept) :]
    assert len(kept) < len(statuses)


def test_with_one_backup_the_older_copy_is_replaced(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(str(path), max_bytes=1024, backups=1)
    for status in range(100, 200):
        _record(log, status=status)
    log.close()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.1"]
    kept = [entry["status"] for file in (Path(f"{path}.1"), path) for entry in _lines(file)]
    assert kept == list(range(200 - len(kept), 200))


def test_closing_flushes_and_a_new_log_on_the_same_path_appends(tmp_path):
    path = tmp_path / "audit.jsonl"
    first = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    _record(first, status=200)
    first.close()
    assert [entry["status"] for entry in _lines(path)] == [200]
    second = AuditLog(str(path), max_bytes=1 << 20, backups=1)
    _record(second, status=500)
    second.close()
    assert [entry["status"] for entry in _lines(path)] == [200, 500]


def test_two_logs_on_different_paths_do_not_share_a_handler(tmp_path):
    first = AuditLog(str(tmp_path / "a.jsonl"), max_bytes=1 << 20, backups=1)
    second = AuditLog(str(tmp_path / "b.jsonl"), max_bytes=1 << 20, backups=1)
    _record(first, status=201)
    _record(second, status=202)
    first.close()
    second.close()
    assert [entry["status"] for entry in _lines(tmp_path / "a.jsonl")] == [201]
    assert [entry["status"] for entry in _lines(tmp_path / "b.jsonl")] == [202]


def test_field_paths_name_every_leaf_with_list_positions_collapsed():
    document = {
        "userId": "u-1",
        "batch": [{"event": "click", "props": {"x": 1}}, {"event": "view", "tags": ["a", "b"]}],
        "context": {"ip": "10.0.0.1", "empty": {}},
        "nothing": None,
    }
    assert field_paths(document) == {
        "userId",
        "batch[*].event",
        "batch[*].props.x",
        "batch[*].tags[*]",
        "context.ip",
        "nothing",
    }


def test_field_paths_of_a_scalar_or_a_top_level_list():
    assert field_paths("secret") == {"$"}
    assert field_paths([1, [2]]) == {"[*]", "[*][*]"}
    assert field_paths({}) == set()


_KEYS = st.text(alphabet="abcdefghij", min_size=1, max_size=4)
_MARKED = st.text(alphabet="0123456789", min_size=1, max_size=8).map(lambda text: f"VAL{text}")
_DOCUMENTS = st.recursive(
    st.one_of(_MARKED, st.integers(min_value=10**6).map(lambda n: f"VAL{n}"), st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_KEYS, children, max_size=4)
    ),
    max_leaves=25,
)


def _scalars(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from _scalars(value)
    elif node is not None:
        yield node


@given(_DOCUMENTS)
def test_field_paths_never_contain_a_value(document):
    paths = field_paths(document)
    for value in _scalars(document):
        assert all(value not in path for path in paths)


@given(_DOCUMENTS)
def test_field_paths_has_one_path_per_distinct_leaf_position(document):
    def leaf_paths(node, path):
        if isinstance(node, dict):
            return {p for key, value in node.items() for p in leaf_paths(value, f"{path}.{key}")}
        if isinstance(node, list):
            return {p for value in node for p in leaf_paths(value, f"{path}[*]")}
        return {path}

    expected = {path.removeprefix(".") or "$" for path in leaf_paths(document, "")}
    assert field_paths(document) == expected


def test_each_worker_writes_its_own_audit_file():
    assert audit_path("/var/log/audit.jsonl", 0, supervised=False) == "/var/log/audit.jsonl"
    assert audit_path("/var/log/audit.jsonl", 1, supervised=True) == "/var/log/audit.worker-1.jsonl"
    assert audit_path("audit", 3, supervised=True) == "audit.worker-3"
