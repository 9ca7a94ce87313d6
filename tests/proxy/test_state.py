"""proxy/state.py: a reload swaps the whole snapshot or keeps the old one, and says so in
its result, its metrics and one log line."""

import logging

import pytest

from proxy import metrics
from proxy.state import ReloadResult, SettingsHolder, Snapshot, log_reload

SECRET = "S3CRET-hash-key-value-0123456789"
ENVIRON = {"SCRUBGATE_TEST_KEY": SECRET}
VALID = (
    "version: 1\n"
    "listeners: [{name: main, port: 0}]\n"
    "routes:\n"
    "  - {name: %s, upstream: 'http://127.0.0.1:9999', category: analytics, mode: forward}\n"
)
INVALID = (
    "version: 1\n"
    "listeners: [{name: main, port: 0}]\n"
    "routes:\n"
    "  - {name: a, upstrem: 'http://127.0.0.1:9999', category: analytics, mode: forward}\n"
)


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _reloads(result: str) -> float:
    return _sample("scrubgate_config_reloads_total", {"result": result})


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(VALID % "first")
    return path


def _route_name(snapshot: Snapshot) -> str:
    (route,) = snapshot.settings.routes
    return route.name


def test_the_holder_starts_with_the_file_in_force(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    assert _route_name(holder.current) == "first"
    assert holder.current.routes.match("main", "POST", None, "/anything").name == "first"
    digest = holder.current.settings.digest
    assert _sample("scrubgate_config_info", {"sha256": digest}) == 1.0
    assert _sample("scrubgate_config_last_reload_successful") == 1.0


def test_a_valid_reload_swaps_the_snapshot_and_reports_the_change(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    old, old_digest = holder.current, holder.current.settings.digest
    successes = _reloads("success")
    settings_file.write_text(VALID % "second")
    assert holder.reload() == ReloadResult(ok=True, problems=(), changed=True)
    assert holder.current is not old and _route_name(holder.current) == "second"
    assert holder.current.routes.match("main", "GET", None, "/").name == "second"
    assert _route_name(old) == "first"
    assert _reloads("success") == successes + 1
    new_digest = holder.current.settings.digest
    assert _sample("scrubgate_config_info", {"sha256": new_digest}) == 1.0
    assert metrics.REGISTRY.get_sample_value("scrubgate_config_info", {"sha256": old_digest}) in (
        None,
        0.0,
    )
    assert _sample("scrubgate_config_last_reload_successful") == 1.0


def test_reloading_an_unchanged_file_is_a_success_without_change(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    successes = _reloads("success")
    assert holder.reload() == ReloadResult(ok=True, problems=(), changed=False)
    assert _reloads("success") == successes + 1


def test_an_invalid_file_keeps_the_same_snapshot_and_lists_every_problem(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    old = holder.current
    failures, successes = _reloads("failure"), _reloads("success")
    settings_file.write_text(INVALID)
    result = holder.reload()
    assert result == ReloadResult(
        ok=False,
        problems=(
            f"{settings_file}:4:5: routes[0]: missing required key 'upstream'",
            f"{settings_file}:4:15: routes[0].upstrem: unknown key 'upstrem' "
            "(did you mean 'upstream'?)",
        ),
        changed=False,
    )
    assert holder.current is old
    assert _reloads("failure") == failures + 1 and _reloads("success") == successes
    assert _sample("scrubgate_config_last_reload_successful") == 0.0
    assert _sample("scrubgate_config_info", {"sha256": old.settings.digest}) == 1.0


def test_a_missing_file_keeps_the_snapshot_and_says_it_cannot_be_read(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    old = holder.current
    settings_file.unlink()
    result = holder.reload()
    assert not result.ok and holder.current is old
    (problem,) = result.problems
    assert problem.startswith(f"{settings_file}:1:1: (top level): cannot read settings file (")


def test_on_swap_callbacks_get_the_new_snapshot_only_after_a_successful_reload(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    seen: list[tuple[str, Snapshot]] = []
    holder.on_swap(lambda snapshot: seen.append(("first", snapshot)))
    holder.on_swap(lambda snapshot: seen.append(("second", snapshot)))
    settings_file.write_text(INVALID)
    holder.reload()
    assert seen == []
    settings_file.write_text(VALID % "next")
    holder.reload()
    assert seen == [("first", holder.current), ("second", holder.current)]
    assert _route_name(seen[0][1]) == "next"


def test_a_failed_reload_after_a_success_records_failure_then_success_again(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    settings_file.write_text(INVALID)
    holder.reload()
    assert _sample("scrubgate_config_last_reload_successful") == 0.0
    before = _sample("scrubgate_config_last_reload_success_timestamp_seconds")
    settings_file.write_text(VALID % "fixed")
    assert holder.reload().ok
    assert _sample("scrubgate_config_last_reload_successful") == 1.0
    assert _sample("scrubgate_config_last_reload_success_timestamp_seconds") >= before


def test_log_reload_of_a_success_names_the_cause_and_the_change(caplog):
    log = logging.getLogger("scrubgate.test_state")
    with caplog.at_level(logging.INFO, logger=log.name):
        log_reload(log, ReloadResult(ok=True, changed=True), "SIGHUP")
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.INFO, "settings reloaded after SIGHUP (changed: True)")
    ]


def test_log_reload_of_a_failure_lists_every_problem_and_no_secret(tmp_path, caplog):
    path = tmp_path / "settings.yaml"
    path.write_text(
        "version: 1\n"
        "listeners: [{name: main, port: '${SCRUBGATE_TEST_KEY}'}]\n"
        "hashing: {key_env: SCRUBGATE_TEST_KEY}\n"
        "routes:\n"
        "  - {name: a, upstream: 'http://127.0.0.1:9999', category: analytics, mode: forward}\n"
    )
    holder_file = tmp_path / "good.yaml"
    holder_file.write_text(VALID % "first")
    holder = SettingsHolder(str(holder_file), ENVIRON)
    holder.path = str(path)
    result = holder.reload()
    log = logging.getLogger("scrubgate.test_state")
    with caplog.at_level(logging.INFO, logger=log.name):
        log_reload(log, result, "file change")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "settings reload after file change failed; the previous settings stay in force:\n"
        f"{path}:2:32: listeners[0].port: expected an integer"
    )
    assert SECRET not in caplog.text


def test_an_upstream_with_a_malformed_bracketed_host_is_a_reload_problem(settings_file):
    holder = SettingsHolder(str(settings_file), ENVIRON)
    old = holder.current
    settings_file.write_text(
        (VALID % "a").replace("http://127.0.0.1:9999", "http://[${SCRUBGATE_TEST_KEY}]/")
    )
    result = holder.reload()
    assert not result.ok and holder.current is old
    assert all(SECRET not in problem for problem in result.problems)
    assert "expected an http:// or https:// URL with a valid host and port" in "".join(
        result.problems
    )
