"""deploy/prometheus/: alerting rules and scrape example, and scrubgate's own /metrics,
checked with promtool (skipped without it locally, a failure in CI)."""

from __future__ import annotations

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.support import (
    ALERT_TESTS,
    ALERTS,
    SCRAPE,
    referenced_metrics,
    registry_metric_names,
    render_exposition,
    render_multi_worker_exposition,
    run_promtool,
)

EXPECTED_ALERTS = {
    "ScrubgateDown",
    "ScrubgateUpstreamFailing",
    "ScrubgateReloadFailed",
    "ScrubgateFailClosedDropsSpiking",
    "ScrubgateLatencyHigh",
    "ScrubgateSpoolBacklog",
    "ScrubgateSpoolDropping",
    "ScrubgateOverloaded",
}


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool_check():
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_alert_rules_fire_when_they_should_and_only_then():
    """promtool's rule unit tests: each alert firing on bad series, quiet on good ones."""
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_scrape_example_is_a_valid_config_loading_the_rules():
    result = run_promtool("check", "config", str(SCRAPE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_metrics_exposition_passes_promtool_lint():
    exposition = render_exposition()
    result = run_promtool("check", "metrics", stdin=exposition)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_exposition_covers_every_metric():
    """The lint above saw series of every family scrubgate declares."""
    samples = {
        sample.name
        for family in text_string_to_metric_families(render_exposition().decode())
        for sample in family.samples
    }
    from proxy.metrics import REGISTRY

    main_series = {"counter": "_total", "histogram": "_bucket", "gauge": "", "info": "_info"}
    expected = {family.name + main_series[family.type] for family in REGISTRY.collect()}
    missing = expected - samples
    assert not missing, f"give {sorted(missing)} a series in _EXPOSITION (tests/deploy/support.py)"


def test_multi_worker_exposition_passes_promtool_lint(tmp_path):
    result = run_promtool("check", "metrics", stdin=render_multi_worker_exposition(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_multi_worker_exposition_has_every_family_once_and_sums_the_workers(tmp_path):
    """Two workers with the same traffic: counters and histograms doubled, in-flight summed,
    instance metrics (reloads, build, workers) once, from the supervisor."""
    single = list(text_string_to_metric_families(render_exposition().decode()))
    merged = list(text_string_to_metric_families(render_multi_worker_exposition(tmp_path).decode()))
    # Worker metrics have no _created series in multiprocess mode (this parser reads those
    # as families of their own).
    assert {family.name for family in merged} - {family.name for family in single} == set()
    assert {family.name for family in single if not family.name.endswith("_created")} <= {
        family.name for family in merged
    }

    def value(families, name, **labels):
        (found,) = [
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == name and sample.labels == labels
        ]
        return found

    for name, labels in [
        (
            "scrubgate_requests_total",
            {"route": "feedback", "category": "feedback", "verdict": "scrubbed"},
        ),
        ("scrubgate_rule_hits_total", {"route": "feedback", "rule": "remove-ip"}),
        ("scrubgate_request_duration_seconds_count", {"route": "feedback"}),
        ("scrubgate_request_body_bytes_bucket", {"route": "feedback", "le": "+Inf"}),
        ("scrubgate_in_flight_requests", {}),
    ]:
        assert value(merged, name, **labels) == 2 * value(single, name, **labels), name
    for name, labels in [
        ("scrubgate_config_reloads_total", {"result": "failure"}),
        ("scrubgate_config_last_reload_successful", {}),
        ("scrubgate_config_info", {"sha256": "1" * 64}),
        ("scrubgate_workers", {}),
        ("scrubgate_worker_restarts_total", {"worker": "1"}),
    ]:
        assert value(merged, name, **labels) == value(single, name, **labels), name


def test_alert_rules_are_complete():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary", "").strip(), name
        assert annotations.get("description", "").strip(), name


def test_alert_exprs_reference_only_real_metrics():
    known = registry_metric_names()
    referenced: set[str] = set()
    for rule in alert_rules():
        names = referenced_metrics(rule["expr"]) | referenced_metrics(
            " ".join(rule.get("annotations", {}).values())
        )
        assert names <= known, f"{rule['alert']}: unknown metrics {sorted(names - known)}"
        referenced |= names
    # Every alert but ScrubgateDown (which uses `up`) names a scrubgate metric.
    assert len(referenced) >= 4


def test_scrape_job_is_the_one_the_alerts_expect():
    config = yaml.safe_load(SCRAPE.read_text())
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert jobs == ["scrubgate"]
    (down,) = (rule for rule in alert_rules() if rule["alert"] == "ScrubgateDown")
    assert 'job="scrubgate"' in down["expr"]
    assert config["rule_files"] == [ALERTS.name]
