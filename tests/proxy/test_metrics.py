"""proxy/metrics.py: every metric is declared here with a scrubgate_ name, help text and
labels from a fixed allowlist; the record_* helpers set what the docs promise."""

import platform
from importlib import metadata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.metrics import MetricWrapperBase

from filters.detectors.scanner import hyperscan_available
from proxy import metrics
from proxy.build import engine_build

ALL_METRICS = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]

# Every label name in use. Each is filled from the settings or a fixed set, never from a
# payload; a new label must be added here deliberately after checking where its values
# come from.
ALLOWED_LABEL_NAMES = {
    "route",
    "category",
    "verdict",
    "listener",
    "rule",
    "detector",
    "codec",
    "reason",
    "status_class",
    "destination",
    "outcome",
    "direction",
    "result",
    "sha256",
    "version",
    "python",
    "scanner",
    "engine",  # proxy.build.engine_build(): compiled, python or mixed
    "worker",
}


def _value(name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels or {})


def _config_info_digests() -> dict[str, float]:
    (family,) = [f for f in metrics.REGISTRY.collect() if f.name == "scrubgate_config_info"]
    return {sample.labels["sha256"]: sample.value for sample in family.samples}


def test_the_module_declares_every_metric_of_its_registry():
    declared = {metric._name for metric in ALL_METRICS}
    registered = {family.name for family in metrics.REGISTRY.collect()}
    assert declared == registered
    assert len(ALL_METRICS) == 33


@pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda metric: metric._name)
def test_every_metric_is_named_scrubgate_and_has_help_text(metric):
    assert metric._name.startswith("scrubgate_")
    assert metric._documentation.strip() and metric._documentation.endswith(".")


def test_label_names_are_exactly_the_allowlist():
    used = {name for metric in ALL_METRICS for name in metric._labelnames}
    assert used == ALLOWED_LABEL_NAMES


def test_instance_metrics_are_declared_metrics():
    assert all(metric in ALL_METRICS for metric in metrics.INSTANCE_METRICS)
    assert {metric._name for metric in metrics.INSTANCE_METRICS} == {
        "scrubgate_config_last_reload_successful",
        "scrubgate_config_last_reload_success_timestamp_seconds",
        "scrubgate_config_reloads",
        "scrubgate_config_info",
        "scrubgate_build_info",
        "scrubgate_workers",
        "scrubgate_worker_restarts",
    }


def test_labelled_returns_the_child_of_labels_and_caches_it():
    first = metrics.labelled(metrics.RULE_HITS, "unit-route", "unit-rule")
    hits = metrics.labelled.cache_info().hits
    again = metrics.labelled(metrics.RULE_HITS, "unit-route", "unit-rule")
    assert again is first
    assert first is metrics.RULE_HITS.labels("unit-route", "unit-rule")
    assert first is metrics.RULE_HITS.labels(route="unit-route", rule="unit-rule")
    assert metrics.labelled.cache_info().hits == hits + 1


def test_a_labelled_child_counts_in_the_registry():
    labels = {"route": "unit-labelled", "rule": "r1"}
    before = _value("scrubgate_rule_hits_total", labels) or 0.0
    metrics.labelled(metrics.RULE_HITS, "unit-labelled", "r1").inc(3)
    assert _value("scrubgate_rule_hits_total", labels) == before + 3


def test_labelled_keeps_different_values_apart():
    kept = metrics.labelled(metrics.EVENTS, "unit-apart", "kept")
    dropped = metrics.labelled(metrics.EVENTS, "unit-apart", "dropped")
    assert kept is not dropped
    assert dropped is metrics.EVENTS.labels(route="unit-apart", verdict="dropped")


@pytest.mark.parametrize(
    ("status", "expected"), [(100, "1xx"), (200, "2xx"), (204, "2xx"), (404, "4xx"), (599, "5xx")]
)
def test_status_class_examples(status, expected):
    assert metrics.status_class(status) == expected


@given(st.integers(min_value=100, max_value=599))
def test_status_class_is_the_first_digit_and_xx(status):
    assert metrics.status_class(status) == f"{str(status)[0]}xx"


def test_record_build_info_labels_version_python_scanner_and_engine():
    metrics.record_build_info()
    try:
        version = metadata.version("scrubgate")
    except metadata.PackageNotFoundError:
        version = "unknown"
    labels = {
        "version": version,
        "python": platform.python_version(),
        "scanner": "hyperscan" if hyperscan_available() else "re2",
        "engine": engine_build(),
    }
    assert _value("scrubgate_build_info", labels) == 1.0


def test_record_settings_in_force_leaves_only_the_current_digest(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.record_settings_in_force("a" * 64)
    metrics.record_settings_in_force("b" * 64)
    assert _config_info_digests() == {"b" * 64: 1.0}
    assert _value("scrubgate_config_last_reload_successful") == 1.0
    assert _value("scrubgate_config_last_reload_success_timestamp_seconds") > 0


def test_record_settings_in_force_twice_with_one_digest_keeps_it(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.record_settings_in_force("c" * 64)
    metrics.record_settings_in_force("c" * 64)
    assert _config_info_digests() == {"c" * 64: 1.0}


def test_with_a_multiprocess_directory_an_old_digest_is_set_to_zero(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.record_settings_in_force("d" * 64)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics.record_settings_in_force("e" * 64)
    assert _config_info_digests() == {"d" * 64: 0.0, "e" * 64: 1.0}
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    metrics.record_settings_in_force("f" * 64)
    assert _config_info_digests() == {"f" * 64: 1.0}


def test_record_reload_of_a_failure_counts_it_and_keeps_the_digest(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.record_settings_in_force("1" * 64)
    stamp = _value("scrubgate_config_last_reload_success_timestamp_seconds")
    failures = _value("scrubgate_config_reloads_total", {"result": "failure"}) or 0.0
    successes = _value("scrubgate_config_reloads_total", {"result": "success"}) or 0.0
    metrics.record_reload(None)
    assert _value("scrubgate_config_reloads_total", {"result": "failure"}) == failures + 1
    assert (_value("scrubgate_config_reloads_total", {"result": "success"}) or 0.0) == successes
    assert _value("scrubgate_config_last_reload_successful") == 0.0
    assert _value("scrubgate_config_last_reload_success_timestamp_seconds") == stamp
    assert _config_info_digests() == {"1" * 64: 1.0}


def test_record_reload_of_a_success_counts_it_and_puts_the_digest_in_force(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.record_settings_in_force("2" * 64)
    metrics.record_reload(None)
    successes = _value("scrubgate_config_reloads_total", {"result": "success"}) or 0.0
    stamp = _value("scrubgate_config_last_reload_success_timestamp_seconds")
    metrics.record_reload("3" * 64)
    assert _value("scrubgate_config_reloads_total", {"result": "success"}) == successes + 1
    assert _value("scrubgate_config_last_reload_successful") == 1.0
    assert _value("scrubgate_config_last_reload_success_timestamp_seconds") >= stamp
    assert _config_info_digests() == {"3" * 64: 1.0}
