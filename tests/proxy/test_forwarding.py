"""proxy/forwarding.py: which headers go upstream and which come back, as pure functions
(the e2e header tests check the same on the wire)."""

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.forwarding import HOP_BY_HOP, request_headers, response_headers
from proxy.settings import parse_settings

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
routes: [{name: r, upstream: "http://127.0.0.1:9", category: traces, mode: forward}]
"""
ROUTE = parse_settings(SETTINGS, "t.yaml", {}).routes[0]


def proxy(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_request_headers_drop_hop_by_hop_connection_tokens_and_route_removals():
    sent = request_headers(
        ROUTE,
        proxy(
            ("Content-Type", "application/json"),
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "1"),
            ("Cookie", "a=b"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Transfer-Encoding", "chunked"),
            ("Host", "proxy"),
            ("Authorization", "Bearer k"),
            ("X-Keep", "1"),
            ("X-Keep", "2"),
        ),
        body_length=12,
    )
    assert list(sent.items()) == [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer k"),
        ("X-Keep", "1"),
        ("X-Keep", "2"),
        ("Content-Length", "12"),
    ]


def test_user_agent_per_route():
    headers = proxy(("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"), ("A", "1"))
    keep = replace(ROUTE, user_agent="keep")
    remove = replace(ROUTE, user_agent="remove")
    generalize = replace(ROUTE, user_agent="generalize")
    assert request_headers(keep, headers, None)["User-Agent"] == headers["User-Agent"]
    assert "User-Agent" not in request_headers(remove, headers, None)
    generalized = request_headers(generalize, headers, None)
    assert list(generalized) == ["User-Agent", "A"]
    assert generalized["User-Agent"] != headers["User-Agent"]
    assert "Firefox" in generalized["User-Agent"]


def test_keep_only_sends_nothing_else_and_still_never_hop_by_hop():
    route = replace(ROUTE, keep_only_headers=frozenset({"content-type", "connection"}))
    sent = request_headers(
        route, proxy(("Content-Type", "a"), ("X-Other", "b"), ("Connection", "close")), 3
    )
    assert list(sent.items()) == [("Content-Type", "a"), ("Content-Length", "3")]


def test_response_headers_drop_only_hop_by_hop():
    relayed = response_headers(
        proxy(
            ("Content-Type", "text/plain"),
            ("Connection", "X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        )
    )
    assert list(relayed.items()) == [
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


names = st.sampled_from(
    [*HOP_BY_HOP, "content-type", "x-a", "X-A", "cookie", "user-agent", "host", "authorization"]
)


@given(st.lists(st.tuples(names, st.text(alphabet="abc ,-", max_size=8)), max_size=12))
def test_order_is_kept_and_nothing_dropped_leaks(pairs):
    headers = proxy(*pairs)
    sent = request_headers(replace(ROUTE, user_agent="keep"), headers, None)
    dropped = (
        HOP_BY_HOP
        | {"cookie", "host"}
        | {
            token.strip().lower()
            for value in headers.getall("connection", [])
            for token in value.split(",")
            if token.strip()
        }
    )
    expected = [(name, value) for name, value in pairs if name.lower() not in dropped]
    assert list(sent.items()) == expected
