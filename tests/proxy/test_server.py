"""proxy/server.py: the pieces of a request's handling that answer or count on their own.

Whole requests (routing, every mode, relaying, limits on the wire) are covered end to end
in tests/e2e against a real upstream; these cases pin the answers and counts of the
helpers those paths share, with real settings, admission and metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from filters.outcome import LimitExceeded, Outcome
from proxy import metrics
from proxy.admission import Admission, Reservation
from proxy.forwarding import UpstreamUnavailable
from proxy.server import (
    _EXCHANGE,
    BufferFull,
    _count_outcome,
    _drop_response,
    _Exchange,
    _hold,
    _overloaded,
    _upstream_failed,
)
from proxy.settings import Route, load_settings

FIXTURES = Path(__file__).parent.parent / "fixtures" / "settings"
KEY = {"TEST_HASH_KEY": "k" * 32}
ROUTE_SETTINGS = """
    drop_response:
      status: 202
      body: '{"queued": true}'
      content_type: application/vnd.queued+json
"""


@pytest.fixture
def route(tmp_path: Path) -> Route:
    text = (
        (FIXTURES / "minimal.yaml")
        .read_text()
        .replace("    policy: default\n", "    policy: default\n" + ROUTE_SETTINGS.lstrip("\n"), 1)
    )
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return load_settings(path, environ=KEY).routes[0]


@pytest.fixture
def exchange() -> Iterator[_Exchange]:
    record = _Exchange()
    token = _EXCHANGE.set(record)
    yield record
    _EXCHANGE.reset(token)


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_hold_refuses_a_body_over_the_size_limit() -> None:
    with Reservation(Admission(), 1000) as reservation, pytest.raises(LimitExceeded):
        _hold(11, 10, 10, reservation)


def test_hold_reserves_the_declared_length_at_once_and_refuses_past_the_buffer() -> None:
    admission = Admission()
    with Reservation(admission, 1000) as first:
        _hold(100, 600, 10_000, first)
        assert admission.buffered == 600  # the declared length, not the bytes so far
        with Reservation(admission, 1000) as second, pytest.raises(BufferFull):
            _hold(100, 600, 10_000, second)
        assert admission.buffered == 600
    assert admission.buffered == 0


def test_hold_without_a_declared_length_holds_what_has_arrived() -> None:
    admission = Admission()
    with Reservation(admission, 1000) as reservation:
        _hold(100, None, 10_000, reservation)
        assert admission.buffered == 100
        _hold(700, None, 10_000, reservation)
        assert admission.buffered == 700
        with pytest.raises(BufferFull):
            _hold(1001, None, 10_000, reservation)
        assert admission.buffered == 700
    assert admission.buffered == 0


def test_drop_answers_with_the_routes_success(route: Route) -> None:
    response = _drop_response(route)
    assert response.status == 202
    assert response.body == b'{"queued": true}'
    assert response.headers["Content-Type"] == "application/vnd.queued+json"


def test_overload_asks_to_retry_and_is_counted(route: Route) -> None:
    before = sample("scrubgate_overload_rejections_total", route=route.name, reason="in_flight")
    response = _overloaded(route, "in_flight")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert orjson.loads(response.body)["route"] == route.name
    after = sample("scrubgate_overload_rejections_total", route=route.name, reason="in_flight")
    assert after == before + 1


@pytest.mark.parametrize(("timeout", "status"), [(True, 504), (False, 502)])
def test_an_upstream_failure_names_the_route_and_counts_a_failed_request(
    route: Route, exchange: _Exchange, timeout: bool, status: int
) -> None:
    labels = {"route": route.name, "category": route.category, "verdict": "failed"}
    before = sample("scrubgate_requests_total", **labels)
    response = _upstream_failed(route, UpstreamUnavailable(route.name, timeout=timeout))
    assert response.status == status
    answer = orjson.loads(response.body)
    assert answer["route"] == route.name
    assert ("timed out" if timeout else "unreachable") in answer["error"]
    assert sample("scrubgate_requests_total", **labels) == before + 1
    assert exchange.verdict == "failed"


def test_an_outcome_is_counted_per_rule_detector_and_event(
    route: Route, exchange: _Exchange
) -> None:
    outcome = Outcome()
    outcome.rule_hits.update({"hash-ids": 3, "redact-all": 2})
    outcome.detector_hits.update({"email": 2})
    outcome.events_in, outcome.events_out = 5, 4
    names = [
        ("scrubgate_rule_hits_total", {"route": route.name, "rule": "hash-ids"}),
        ("scrubgate_detector_hits_total", {"route": route.name, "detector": "email"}),
        ("scrubgate_events_total", {"route": route.name, "verdict": "kept"}),
        ("scrubgate_events_total", {"route": route.name, "verdict": "dropped"}),
    ]
    before = [sample(name, **labels) for name, labels in names]
    _count_outcome(route, outcome)
    after = [sample(name, **labels) for name, labels in names]
    assert [now - then for now, then in zip(after, before, strict=True)] == [3, 2, 4, 1]
    assert exchange.rule_hits == {"hash-ids": 3, "redact-all": 2}
