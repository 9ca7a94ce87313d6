"""deploy/grafana/scrubgate.json: structure, real metric names and labels, valid PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.support import (
    DASHBOARD,
    referenced_metrics,
    registry_metric_names,
    render_exposition,
    run_promtool,
)

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
ROUTE_QUERY = "label_values(scrubgate_requests_total, route)"
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return dashboard()["panels"]


def exprs() -> list[tuple[str, str]]:
    """(panel title / refId, expr) of every query in the dashboard."""
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel["targets"]
    ]


def test_dashboard_is_an_importable_export():
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] == "scrubgate"
    assert board["title"]
    (ds_input,) = board["__inputs"]
    assert ds_input["name"] == "DS_PROMETHEUS"
    assert ds_input["type"] == "datasource"
    assert ds_input["pluginId"] == "prometheus"


def test_route_variable():
    (route,) = (var for var in dashboard()["templating"]["list"] if var["name"] == "route")
    assert route["type"] == "query"
    assert route["datasource"] == DATASOURCE
    assert route["definition"] == ROUTE_QUERY
    assert route["query"]["query"] == ROUTE_QUERY
    assert route["multi"] and route["includeAll"]
    assert route["allValue"] == ".*"


def test_every_panel_has_title_description_and_targets():
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        title = panel.get("title", "")
        assert title.strip(), panel
        assert panel.get("description", "").strip(), title
        assert panel["datasource"] == DATASOURCE, title
        assert len(panel.get("targets", [])) >= 1, title
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target["datasource"] == DATASOURCE, title


def test_panels_tile_the_grid_without_overlap():
    taken: dict[tuple[int, int], str] = {}
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize(
    "metric",
    [
        "scrubgate_requests_total",
        "scrubgate_events_total",
        "scrubgate_rule_hits_total",
        "scrubgate_detector_hits_total",
        "scrubgate_request_duration_seconds",
        "scrubgate_engine_duration_seconds",
        "scrubgate_upstream_duration_seconds",
        "scrubgate_upstream_responses_total",
        "scrubgate_payload_errors_total",
        "scrubgate_in_flight_requests",
        "scrubgate_config_last_reload_successful",
        "scrubgate_config_last_reload_success_timestamp_seconds",
        "scrubgate_workers",
        "scrubgate_worker_restarts_total",
    ],
)
def test_dashboard_shows(metric):
    assert any(metric in referenced_metrics(expr) for _, expr in exprs())


def test_top_rule_hits_query():
    (top,) = (panel for panel in panels() if panel["title"] == "Top rule hits")
    (target,) = top["targets"]
    assert re.fullmatch(
        r"topk\(10, sum by \(rule\) \(rate\(scrubgate_rule_hits_total(\{[^}]*\})?\[5m\]\)\)\)",
        target["expr"],
    )


def test_every_metric_referenced_exists():
    known = registry_metric_names()
    texts = [(where, expr) for where, expr in exprs()]
    texts += [(panel["title"], panel["description"]) for panel in panels()]
    texts += [
        (f"variable {var['name']}", var["definition"]) for var in dashboard()["templating"]["list"]
    ]
    for where, text in texts:
        unknown = referenced_metrics(text) - known
        assert not unknown, f"{where}: unknown metrics {sorted(unknown)}"


def test_label_matchers_use_labels_the_metric_has():
    """A `{route=~"$route"}` on a metric without a route label would silently show nothing."""
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(render_exposition().decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    selector = re.compile(r"(scrubgate_[a-z0-9_]+)\{([^}]*)\}")
    matcher = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
    for where, expr in exprs():
        for metric, body in selector.findall(expr):
            used = set(matcher.findall(body))
            allowed = labels[metric] | TARGET_LABELS
            assert used <= allowed, f"{where}: {metric} has no label {sorted(used - allowed)}"


def test_every_expr_is_valid_promql(tmp_path: Path):
    """promtool parses each query (Grafana's variables replaced) as a recording rule."""
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$route", ".*"),
        }
        for index, (_, expr) in enumerate(exprs())
    ]
    assert not any("$" in rule["expr"] for rule in rules), "unhandled Grafana variable"
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
