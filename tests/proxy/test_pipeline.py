"""proxy/pipeline.py: ``scrub_request``, one request through Content-Encoding → format →
codec + engine → same format → same encoding, with settings parsed from YAML as the server
and ``scrubgate scrub`` get them."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import brotli
import pytest
import zstandard
from hypothesis import assume, given
from hypothesis import strategies as st

from filters.actions import KeyedHasher
from filters.outcome import LimitExceeded, PayloadError
from filters.result import ScrubResult
from proxy.pipeline import Scrubbed, codec_limits, scrub_request
from proxy.settings import Route, parse_settings

KEY = "pipeline-test-hash-key-0123456789"
SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
hashing: {key_env: PIPELINE_KEY}
limits: {max_body_bytes: 4096, max_decoded_bytes: 16384, max_ratio: 20, max_depth: 8}
categories: {analytics: scrub}
policies:
  p:
    rules:
      - {id: drop-tests, action: drop-event, select: event, equals: test}
      - {id: remove-secret, action: remove, select: ["**.secret"]}
      - {id: hash-user, action: hash, select: ["**.user", uid]}
routes:
  - name: auto
    match: {path_prefix: /auto}
    upstream: "http://127.0.0.1:9"
    category: analytics
    policy: p
  - name: json
    match: {path_prefix: /json}
    upstream: "http://127.0.0.1:9"
    category: analytics
    policy: p
    format: json
"""
LOADED = parse_settings(SETTINGS, "pipeline.yaml", {"PIPELINE_KEY": KEY})
LIMITS = LOADED.limits
HASHER = KeyedHasher(KEY.encode())


def route(name: str) -> Route:
    found = LOADED.route(name)
    assert found is not None
    return found


def hashed(value: str) -> Any:
    return HASHER.hash_value(value)


EVENT = {"event": "click", "user": "u1", "secret": "s3", "n": 1}
SCRUBBED_EVENT = {"event": "click", "user": hashed("u1"), "n": 1}
JSON_BODY = json.dumps(EVENT).encode()

ENCODERS: dict[str | None, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    None: (lambda data: data, lambda data: data),
    "identity": (lambda data: data, lambda data: data),
    "gzip": (gzip.compress, gzip.decompress),
    "x-gzip": (gzip.compress, gzip.decompress),
    "deflate": (zlib.compress, zlib.decompress),
    "br": (brotli.compress, brotli.decompress),
    "zstd": (zstandard.compress, zstandard.decompress),
    "gzip, br": (
        lambda data: brotli.compress(gzip.compress(data)),
        lambda data: gzip.decompress(brotli.decompress(data)),
    ),
}


def scrub(
    body: bytes,
    *,
    route_name: str = "auto",
    content_type: str | None = "application/json",
    content_encoding: str | None = None,
    path: str = "/auto/v1",
    query: str = "",
    **options: Any,
) -> Scrubbed:
    return scrub_request(
        route(route_name),
        LIMITS,
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        path=path,
        query=query,
        **options,
    )


# --- encodings -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_body_comes_back_scrubbed_in_the_same_encoding(encoding: str | None) -> None:
    encode, decode = ENCODERS[encoding]
    result = scrub(encode(JSON_BODY), content_encoding=encoding)
    assert result.body is not None
    decoded = decode(result.body)
    assert json.loads(decoded) == SCRUBBED_EVENT
    assert len(decoded) == len(json.dumps(SCRUBBED_EVENT, separators=(",", ":")))
    assert result.outcome.rule_hits == {"remove-secret": 1, "hash-user": 1}


def test_an_unlabelled_gzip_body_is_sniffed_and_sent_back_gzipped() -> None:
    result = scrub(gzip.compress(JSON_BODY), content_encoding=None)
    assert result.body is not None
    assert result.body[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(result.body)) == SCRUBBED_EVENT


def test_identity_body_length_is_that_of_the_scrubbed_json() -> None:
    result = scrub(JSON_BODY)
    expected = json.dumps(SCRUBBED_EVENT, separators=(",", ":")).encode()
    assert result.body == expected
    assert len(result.body) == len(expected)
    assert not result.empty


# --- formats ---------------------------------------------------------------------------


def test_ndjson_lines_are_scrubbed_one_by_one() -> None:
    lines = [{"user": "a", "secret": 1}, {"user": "b"}]
    body = b"\n".join(json.dumps(line).encode() for line in lines) + b"\n"
    result = scrub(body, content_type="application/x-ndjson")
    assert result.body is not None
    assert [json.loads(line) for line in result.body.splitlines()] == [
        {"user": hashed("a")},
        {"user": hashed("b")},
    ]
    assert result.outcome.rule_hits == {"remove-secret": 1, "hash-user": 2}


def test_form_body_stays_a_form() -> None:
    body = b"user=u1&secret=s3&n=1"
    result = scrub(body, content_type="application/x-www-form-urlencoded")
    assert result.body is not None
    assert parse_qsl(result.body.decode()) == [("user", hashed("u1")), ("n", "1")]


def test_a_json_route_ignores_the_content_type() -> None:
    result = scrub(JSON_BODY, route_name="json", content_type="text/plain", path="/json")
    assert result.body is not None
    assert json.loads(result.body) == SCRUBBED_EVENT


def test_a_batch_whose_events_are_all_dropped_has_no_body() -> None:
    result = scrub(json.dumps({"event": "test", "user": "u"}).encode())
    assert result.body is None
    assert result.empty
    assert result.outcome.rule_hits == {"drop-tests": 1}
    assert (result.outcome.events_in, result.outcome.events_out) == (1, 0)


# --- query and empty bodies ------------------------------------------------------------


def test_the_query_goes_through_the_policy_and_keeps_its_order() -> None:
    result = scrub(b"", query="x=1&uid=7&secret=s&y=2")
    assert result.body == b""
    assert parse_qsl(result.query) == [("x", "1"), ("uid", hashed("7")), ("y", "2")]
    assert result.outcome.rule_hits == {"hash-user": 1, "remove-secret": 1}


def test_query_and_body_outcomes_are_merged() -> None:
    result = scrub(JSON_BODY, query="uid=7")
    assert result.outcome.rule_hits == {"remove-secret": 1, "hash-user": 2}


def test_an_empty_query_and_body_pass_through() -> None:
    result = scrub(b"")
    assert (result.body, result.query) == (b"", "")
    assert not result.outcome.changed


@given(st.from_regex(r"[a-z]{1,8}=[a-z0-9]{0,8}(&[a-z]{1,8}=[a-z0-9]{0,8}){0,4}", fullmatch=True))
def test_a_query_no_rule_selects_is_unchanged(query: str) -> None:
    assume(not {pair.split("=", 1)[0] for pair in query.split("&")} & {"uid", "secret", "event"})
    assert scrub(b"", query=query).query == query


# --- explain and observe ---------------------------------------------------------------


def test_explain_lists_every_change_with_its_path() -> None:
    result = scrub(JSON_BODY, query="uid=7", explain=True)
    assert sorted(result.outcome.changes or []) == [
        ("hash-user", "uid"),
        ("hash-user", "user"),
        ("remove-secret", "secret"),
    ]


def test_without_explain_no_changes_are_kept() -> None:
    assert scrub(JSON_BODY, query="uid=7").outcome.changes is None


def test_observe_sees_every_scrubbed_document() -> None:
    seen: list[ScrubResult] = []
    scrub(JSON_BODY, query="uid=7", observe=seen.append)
    assert [json.loads(result.json) for result in seen] == [{"uid": hashed("7")}, SCRUBBED_EVENT]


def test_observe_sees_an_ndjson_body_as_one_batch() -> None:
    seen: list[ScrubResult] = []
    body = b'{"user": "a"}\n{"user": "b"}\n'
    scrub(body, content_type="application/x-ndjson", observe=seen.append)
    assert [json.loads(result.json) for result in seen] == [
        [{"user": hashed("a")}, {"user": hashed("b")}]
    ]


# --- errors and limits -----------------------------------------------------------------


def test_codec_limits_come_from_the_settings() -> None:
    bounds = codec_limits(LIMITS)
    assert (bounds.max_body_bytes, bounds.max_decoded_bytes, bounds.max_ratio) == (
        4096,
        16384,
        20,
    )
    assert bounds.max_parts == LIMITS.max_parts


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b'{"user": ', None),
        (b"\x1f\x8b\x08 truncated gzip", "gzip"),
        (JSON_BODY, "compress"),
        (JSON_BODY, "gzip, gzip, gzip, gzip, gzip"),
    ],
    ids=["broken-json", "corrupt-gzip", "unknown-encoding", "too-many-layers"],
)
def test_bodies_that_do_not_parse_are_payload_errors(body: bytes, encoding: str | None) -> None:
    with pytest.raises(PayloadError) as raised:
        scrub(body, content_encoding=encoding, route_name="json", path="/json")
    assert not isinstance(raised.value, LimitExceeded)


def test_a_body_over_max_body_bytes_is_refused() -> None:
    body = json.dumps({"pad": "x" * 4096}).encode()
    with pytest.raises(LimitExceeded) as raised:
        scrub(body)
    assert raised.value.limit == "max_body_bytes"


def test_a_decompression_bomb_stops_at_the_ratio() -> None:
    body = gzip.compress(json.dumps({"pad": "x" * 15000}).encode())
    assert len(body) * 20 < 15000
    with pytest.raises(LimitExceeded):
        scrub(body, content_encoding="gzip")


def test_nesting_past_max_depth_is_refused() -> None:
    deep: Any = {"user": "u"}
    for _ in range(10):
        deep = {"d": deep}
    with pytest.raises(LimitExceeded):
        scrub(json.dumps(deep).encode())
