"""proxy/routing.py: only configured routes match; no path trick reaches anything else."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.routing import RouteTable, normalize_path, upstream_url
from proxy.settings import parse_settings

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}, {name: other, port: 0}]
routes:
  - name: feedback
    match: {path_prefix: /feedback, methods: [POST]}
    upstream: http://127.0.0.1:9001/base
    category: feedback
    mode: forward
  - name: sentry
    match: {path_regex: '^/api/[0-9]+/envelope/$'}
    upstream: http://127.0.0.1:9002
    category: crash
    mode: forward
  - name: by-host
    match: {host: telemetry.example.com}
    upstream: http://127.0.0.1:9003
    category: analytics
    mode: forward
  - name: other-listener
    listener: other
    match: {path_prefix: /collect}
    upstream: http://127.0.0.1:9004
    strip_prefix: true
    category: clickstream
    mode: forward
"""


@pytest.fixture(scope="module")
def table():
    return RouteTable(parse_settings(SETTINGS, "test.yaml", {}).routes)


@pytest.mark.parametrize(
    ("listener", "method", "host", "path", "expected"),
    [
        ("main", "POST", "proxy", "/feedback", "feedback"),
        ("main", "POST", "proxy", "/feedback/form", "feedback"),
        ("main", "GET", "proxy", "/feedback", None),
        ("main", "POST", "proxy", "/feedbackx", None),
        ("main", "POST", "proxy", "/api/42/envelope/", "sentry"),
        ("main", "POST", "proxy", "/api/x/envelope/", None),
        ("main", "GET", "telemetry.example.com:8080", "/anything", "by-host"),
        ("main", "GET", "TELEMETRY.example.com", "/anything", "by-host"),
        ("main", "GET", "evil.example.com", "/anything", None),
        ("other", "GET", "proxy", "/collect/x", "other-listener"),
        ("main", "GET", "proxy", "/collect/x", None),
    ],
)
def test_route_matching(table, listener, method, host, path, expected):
    route = table.match(listener, method, host, path)
    assert (route.name if route else None) == expected


@pytest.mark.parametrize(
    "path",
    [
        "http://evil.example.com/feedback",
        "evil.example.com:443",
        "//evil.example.com/feedback",
        "/feedback/../admin",
        "/feedback/%2e%2e/admin",
        "/feedback/%252e%252e/admin",
        "/feedback\\..\\admin",
        "/feedback/./x",
        "*",
    ],
)
def test_path_tricks_never_match(table, path):
    assert table.match("main", "POST", "proxy", path) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a/b", "/a/b"), ("/a//b", "/a/b"), ("/a/b/", "/a/b/"), ("/", "/"), ("/a%20b", "/a b")],
)
def test_normalize_path(path, expected):
    assert normalize_path(path) == expected


def test_upstream_url_keeps_base_path_and_query(table):
    route = table.match("main", "POST", "proxy", "/feedback/form")
    assert (
        upstream_url(route, "/feedback/form", "a=1")
        == "http://127.0.0.1:9001/base/feedback/form?a=1"
    )


def test_upstream_url_strips_prefix(table):
    route = table.match("other", "GET", "proxy", "/collect/pixel.gif")
    assert upstream_url(route, "/collect/pixel.gif", "") == "http://127.0.0.1:9004/pixel.gif"


REQUESTS = st.tuples(
    st.sampled_from(["main", "other"]),
    st.sampled_from(["GET", "POST", "post"]),
    st.one_of(st.none(), st.sampled_from(["proxy", "TELEMETRY.example.com:1", "[::1]:8"])),
    st.lists(
        st.sampled_from(["/", "feedback", "api", "42", "envelope", "collect", "..", "%2e", "x"]),
        max_size=5,
    ).map("".join),
)


@settings(max_examples=300)
@given(requests=st.lists(REQUESTS, min_size=1, max_size=20))
def test_a_remembered_match_is_the_match_itself(requests):
    """Asked again and again, in any order, the table answers what matching afresh does."""
    routes = parse_settings(SETTINGS, "test.yaml", {}).routes
    table = RouteTable(routes)
    for request in requests + requests:
        assert table.match(*request) is table._first_match(*request)


def test_distinct_requests_never_grow_the_table_past_its_bound(table):
    for n in range(10_000):
        assert table.match("main", "POST", "proxy", f"/feedback/{n}").name == "feedback"
    assert len(table._matched) <= 4096
    long_path = "/feedback/" + "x" * 300
    assert table.match("main", "POST", "proxy", long_path).name == "feedback"
    assert ("main", "POST", "proxy", long_path) not in table._matched
