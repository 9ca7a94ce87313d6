"""Every wire format x every content encoding, end to end.

For each pair a real client posts a body carrying the canaries of
:mod:`tests.e2e.payloads` through scrubgate to the recording upstream, which must get:
no canary in anything it can decode, every non-sensitive value and the structure intact,
a body it can parse in its own format (with the standard libraries or the
``opentelemetry.proto`` classes), the client's Content-Encoding, a correct
Content-Length; and the client must get the upstream's answer.

GET query beacons have no body to encode, so they run once, outside the encoding matrix.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.e2e.payloads import (
    ATTACHMENT,
    ATTACHMENT_FILENAME,
    BOUNDARY,
    EMAIL,
    ENCODINGS,
    GENERALIZED_URL,
    HASHED_USER_ID,
    HOME_USER,
    IP,
    MESSAGE,
    PREAMBLE,
    SCREENSHOT,
    SCREENSHOT_FILENAME,
    SCRUBBED_MESSAGE,
    SENTRY_EVENT_ID,
    SENTRY_SESSION_ID,
    SPAN_ID,
    TRACE_ID,
    URL,
    USER_ID,
    Encoding,
    analytics_event,
    assert_no_canaries,
    attribute_dict,
    build_envelope,
    build_multipart,
    check_analytics_event,
    check_sentry_event,
    otlp_from_json,
    otlp_to_json,
    parse_envelope,
    parse_multipart,
    query_string,
    sentry_event,
    sentry_session,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = (
    PREAMBLE
    + """
routes:
  - {name: analytics, match: {path_regex: "^/v1/(batch|track|beacon)$"}, upstream: "{upstream}", category: analytics, policy: p}
  - {name: clickstream, match: {path_prefix: /collect}, upstream: "{upstream}", category: clickstream, policy: p}
  - name: crash-attachments-dropped
    match: {path_regex: "^/api/41/(envelope|store)/$"}
    upstream: "{upstream}"
    category: crash
    policy: p
    attachments: drop
  - name: crash
    match: {path_regex: "^/api/[0-9]+/(envelope|store)/$"}
    upstream: "{upstream}"
    category: crash
    policy: p
    attachments: keep-scrub-filename
  - {name: traces, match: {path_regex: "^/v1/(traces|logs)$", methods: [POST]}, upstream: "{upstream}", category: traces, policy: p}
  - {name: feedback-drop, match: {path_prefix: /feedback/drop}, upstream: "{upstream}", category: feedback, policy: p, attachments: drop}
  - {name: feedback-keep, match: {path_prefix: /feedback/keep}, upstream: "{upstream}", category: feedback, policy: p, attachments: keep}
  - {name: feedback-scrub-name, match: {path_prefix: /feedback/scrub-name}, upstream: "{upstream}", category: feedback, policy: p, attachments: keep-scrub-filename}
"""
)

UPSTREAM_STATUS = 202
UPSTREAM_REPLY = b'{"received":"yes"}'


@dataclass(frozen=True)
class Case:
    """One wire format: where it is posted, how it is labelled, the body a client sends,
    and how the vendor parses and checks what it received (decoded body, Content-Type)."""

    id: str
    path: str
    content_type: str
    body: bytes
    check: Callable[[bytes, str], None]
    allowed: tuple[bytes, ...] = field(default=())
    """Byte strings the policy keeps on purpose (not searched for canaries)."""


# --- JSON family -------------------------------------------------------------------------


def _check_json_object(body: bytes, _: str) -> None:
    check_analytics_event(orjson.loads(body))


def _check_json_array(body: bytes, _: str) -> None:
    events = orjson.loads(body)
    assert isinstance(events, list) and len(events) == 2
    for number, event in enumerate(events):
        # Exact hashes: test_top_level_event_lists_hash_ids_once (a known bug).
        check_analytics_event(event, number, exact_hash=False)


def _segment_batch() -> bytes:
    return orjson.dumps(
        {
            "batch": [analytics_event(0), analytics_event(1), analytics_event(2)],
            "sentAt": "2024-01-01T00:00:00.000Z",
            "writeKey": "wk-public",
            "context": {"library": {"name": "analytics-node", "version": "1.0"}, "ip": IP},
        }
    )


def _check_segment_batch(body: bytes, _: str) -> None:
    document = orjson.loads(body)
    assert document["sentAt"] == "2024-01-01T00:00:00.000Z"
    assert document["writeKey"] == "wk-public"
    assert document["context"]["library"] == {"name": "analytics-node", "version": "1.0"}
    assert len(document["batch"]) == 3
    for number, event in enumerate(document["batch"]):
        check_analytics_event(event, number)


def _ndjson() -> bytes:
    return b"".join(orjson.dumps(analytics_event(number)) + b"\n" for number in range(3))


def _check_ndjson(body: bytes, _: str) -> None:
    assert body.endswith(b"\n")
    lines = body.splitlines()
    assert len(lines) == 3
    for number, line in enumerate(lines):
        # Exact hashes: test_top_level_event_lists_hash_ids_once (a known bug).
        check_analytics_event(orjson.loads(line), number, exact_hash=False)


# --- forms -------------------------------------------------------------------------------


def _mixpanel_events() -> list[dict[str, Any]]:
    return [
        {
            "event": "Settings Saved",
            "properties": {
                "mp_lib": "web",
                "distinct_id": EMAIL,
                "userId": USER_ID,
                "ip": IP,
                "$current_url": URL,
                "note": MESSAGE,
                "plan": "pro",
                "seats": 12,
            },
        }
    ]


def _form() -> bytes:
    data = base64.b64encode(orjson.dumps(_mixpanel_events())).decode()
    return query_string(
        [
            ("event", "Settings Saved"),
            ("email", EMAIL),
            ("userId", USER_ID),
            ("message", MESSAGE),
            ("verbose", "1"),
            ("data", data),
        ]
    ).encode()


def _check_form(body: bytes, _: str) -> None:
    pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert [name for name, _ in pairs] == ["event", "email", "userId", "message", "verbose", "data"]
    fields = dict(pairs)
    assert fields["event"] == "Settings Saved"
    assert fields["email"] == "[email]"
    assert fields["userId"] == HASHED_USER_ID
    assert fields["message"] == SCRUBBED_MESSAGE
    assert fields["verbose"] == "1"
    (event,) = orjson.loads(base64.b64decode(fields["data"], validate=True))
    assert event["event"] == "Settings Saved"
    properties = event["properties"]
    assert properties["mp_lib"] == "web"
    assert properties["distinct_id"] == "[email]"
    assert properties["userId"] == HASHED_USER_ID
    assert properties["ip"] in ("203.0.113.0", "[ip]")
    assert properties["$current_url"].startswith("https://app.example.org/settings/profile")
    assert properties["note"] == SCRUBBED_MESSAGE
    assert (properties["plan"], properties["seats"]) == ("pro", 12)


def _multipart() -> bytes:
    return build_multipart(
        [
            ("email", EMAIL),
            ("userId", USER_ID),
            ("message", MESSAGE),
            ("rating", "4"),
            ("context", orjson.dumps({"url": URL, "ip": IP, "plan": "pro"}).decode()),
        ],
        [("screenshot", SCREENSHOT_FILENAME, "image/png", SCREENSHOT)],
    )


def _check_multipart_fields(parts: list[Any]) -> list[Any]:
    texts = {part.name: part.content.decode() for part in parts if part.filename is None}
    assert list(texts) == ["email", "userId", "message", "rating", "context"]
    assert texts["email"] == "[email]"
    assert texts["userId"] == HASHED_USER_ID
    assert texts["message"] == SCRUBBED_MESSAGE
    assert texts["rating"] == "4"
    context = orjson.loads(texts["context"])
    assert context["url"] == GENERALIZED_URL
    assert context["ip"] in ("203.0.113.0", "[ip]")
    assert context["plan"] == "pro"
    return [part for part in parts if part.filename is not None]


def _check_multipart_dropped(body: bytes, content_type: str) -> None:
    files = _check_multipart_fields(parse_multipart(body, content_type))
    assert files == []


def _check_multipart_kept(body: bytes, content_type: str) -> None:
    (screenshot,) = _check_multipart_fields(parse_multipart(body, content_type))
    assert screenshot.name == "screenshot"
    assert screenshot.filename == SCREENSHOT_FILENAME
    assert screenshot.content_type == "image/png"
    assert screenshot.content == SCREENSHOT


def _check_multipart_scrubbed_name(body: bytes, content_type: str) -> None:
    (screenshot,) = _check_multipart_fields(parse_multipart(body, content_type))
    assert screenshot.name == "screenshot"
    assert screenshot.filename == "screenshot for [email] (1).png"
    assert screenshot.content_type == "image/png"
    assert screenshot.content == SCREENSHOT


# --- Sentry ------------------------------------------------------------------------------


def _envelope() -> bytes:
    return build_envelope(
        [
            ({"type": "event", "content_type": "application/json"}, orjson.dumps(sentry_event())),
            (
                {
                    "type": "attachment",
                    "filename": ATTACHMENT_FILENAME,
                    "content_type": "application/octet-stream",
                },
                ATTACHMENT,
            ),
            ({"type": "session"}, orjson.dumps(sentry_session())),
        ],
        {
            "event_id": SENTRY_EVENT_ID,
            "sent_at": "2024-01-01T00:00:05.000Z",
            "sdk": {"name": "sentry.python", "version": "2.0.0"},
            "trace": {"trace_id": TRACE_ID, "public_key": "public", "user_id": USER_ID},
        },
    )


def _check_envelope(body: bytes, attachment_kept: bool) -> None:
    header, items = parse_envelope(body)
    assert header["event_id"] == SENTRY_EVENT_ID
    assert header["sdk"] == {"name": "sentry.python", "version": "2.0.0"}
    assert header["trace"]["trace_id"] == TRACE_ID
    assert header["trace"]["public_key"] == "public"
    expected_types = ["event", "attachment", "session"] if attachment_kept else ["event", "session"]
    assert [item_header["type"] for item_header, _ in items] == expected_types
    payloads = {item_header["type"]: (item_header, payload) for item_header, payload in items}
    check_sentry_event(orjson.loads(payloads["event"][1]))
    session = orjson.loads(payloads["session"][1])
    assert session["sid"] == SENTRY_SESSION_ID
    assert session["did"] == "[email]"
    assert (session["init"], session["status"], session["errors"]) == (True, "exited", 1)
    assert session["attrs"]["release"] == "app@1.2.3"
    assert session["attrs"]["environment"] == "production"
    assert session["attrs"]["ip_address"] in ("203.0.113.0", "[ip]")
    if attachment_kept:
        attachment_header, attachment = payloads["attachment"]
        assert attachment == ATTACHMENT
        assert attachment_header["content_type"] == "application/octet-stream"
        assert attachment_header["filename"] == "/home/[user]/crash.log"


def _store_json() -> bytes:
    return orjson.dumps(sentry_event())


def _check_store_json(body: bytes, _: str) -> None:
    check_sentry_event(orjson.loads(body))


def _store_base64_zlib() -> bytes:
    return base64.b64encode(zlib.compress(orjson.dumps(sentry_event())))


def _check_store_base64_zlib(body: bytes, _: str) -> None:
    check_sentry_event(orjson.loads(zlib.decompress(base64.b64decode(body, validate=True))))


# --- OTLP --------------------------------------------------------------------------------


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


RESOURCE_ATTRIBUTES = {"service.name": "checkout", "service.version": "1.2.3"}


def _traces() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_kv(k, v) for k, v in RESOURCE_ATTRIBUTES.items())
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "e2e.instrumentation"
    scope_spans.scope.version = "0.1"
    span = scope_spans.spans.add()
    span.trace_id = bytes.fromhex(TRACE_ID)
    span.span_id = bytes.fromhex(SPAN_ID)
    span.name = "POST /settings"
    span.kind = 2
    span.start_time_unix_nano = 1_700_000_000_000_000_000
    span.end_time_unix_nano = 1_700_000_000_250_000_000
    span.attributes.extend(
        [
            _kv("user_id", USER_ID),
            _kv("url", URL),
            _kv("client.address", IP),
            _kv("note", MESSAGE),
            _kv("http.response.status_code", 200),
            _kv("retry", True),
            _kv("load", 0.25),
        ]
    )
    event = span.events.add()
    event.name = "exception"
    event.time_unix_nano = 1_700_000_000_100_000_000
    event.attributes.extend([_kv("exception.message", f"mail {EMAIL} failed")])
    span.status.code = 2
    return request


def _check_traces(request: ExportTraceServiceRequest) -> None:
    (resource_spans,) = request.resource_spans
    assert attribute_dict(resource_spans.resource.attributes) == RESOURCE_ATTRIBUTES
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("e2e.instrumentation", "0.1")
    (span,) = scope_spans.spans
    assert span.trace_id.hex() == TRACE_ID and span.span_id.hex() == SPAN_ID
    assert (span.name, span.kind, span.status.code) == ("POST /settings", 2, 2)
    assert span.start_time_unix_nano == 1_700_000_000_000_000_000
    assert span.end_time_unix_nano == 1_700_000_000_250_000_000
    attributes = attribute_dict(span.attributes)
    assert attributes["user_id"] == HASHED_USER_ID
    assert attributes["url"] == GENERALIZED_URL
    assert attributes["client.address"] == "[ip]"
    assert attributes["note"] == SCRUBBED_MESSAGE
    assert attributes["http.response.status_code"] == 200
    assert attributes["retry"] is True
    assert attributes["load"] == 0.25
    (event,) = span.events
    assert event.name == "exception"
    assert attribute_dict(event.attributes) == {"exception.message": "mail [email] failed"}


def _logs() -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(_kv(k, v) for k, v in RESOURCE_ATTRIBUTES.items())
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "e2e.logger"
    for number in range(2):
        record = scope_logs.log_records.add()
        record.time_unix_nano = 1_700_000_000_000_000_000 + number
        record.severity_number = 17
        record.severity_text = "ERROR"
        record.body.string_value = MESSAGE
        record.trace_id = bytes.fromhex(TRACE_ID)
        record.span_id = bytes.fromhex(SPAN_ID)
        record.attributes.extend(
            [_kv("user_id", USER_ID), _kv("client.address", IP), _kv("attempt", number)]
        )
    return request


def _check_logs(request: ExportLogsServiceRequest) -> None:
    (resource_logs,) = request.resource_logs
    assert attribute_dict(resource_logs.resource.attributes) == RESOURCE_ATTRIBUTES
    (scope_logs,) = resource_logs.scope_logs
    assert scope_logs.scope.name == "e2e.logger"
    assert len(scope_logs.log_records) == 2
    for number, record in enumerate(scope_logs.log_records):
        assert record.time_unix_nano == 1_700_000_000_000_000_000 + number
        assert (record.severity_number, record.severity_text) == (17, "ERROR")
        assert record.body.string_value == SCRUBBED_MESSAGE
        assert record.trace_id.hex() == TRACE_ID and record.span_id.hex() == SPAN_ID
        assert attribute_dict(record.attributes) == {
            "user_id": HASHED_USER_ID,
            "client.address": "[ip]",
            "attempt": number,
        }


def _protobuf_check(
    message_type: type[Any], check: Callable[[Any], None]
) -> Callable[[bytes, str], None]:
    def run(body: bytes, _: str) -> None:
        message = message_type()
        message.ParseFromString(body)
        check(message)

    return run


def _json_check(
    message_type: type[Any], check: Callable[[Any], None]
) -> Callable[[bytes, str], None]:
    def run(body: bytes, _: str) -> None:
        check(otlp_from_json(body, message_type))

    return run


# --- the table ---------------------------------------------------------------------------

MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

CASES: tuple[Case, ...] = (
    Case(
        "json-object",
        "/v1/track",
        "application/json",
        orjson.dumps(analytics_event()),
        _check_json_object,
    ),
    Case(
        "json-array",
        "/v1/batch",
        "application/json",
        orjson.dumps([analytics_event(0), analytics_event(1)]),
        _check_json_array,
    ),
    Case("segment-batch", "/v1/batch", "application/json", _segment_batch(), _check_segment_batch),
    Case("ndjson", "/v1/batch", "application/x-ndjson", _ndjson(), _check_ndjson),
    Case(
        "text-plain-beacon",
        "/v1/beacon",
        "text/plain;charset=UTF-8",
        orjson.dumps(analytics_event()),
        _check_json_object,
    ),
    Case("form-base64-data", "/collect", "application/x-www-form-urlencoded", _form(), _check_form),
    Case(
        "sentry-envelope-attachment-kept",
        "/api/42/envelope/",
        "application/x-sentry-envelope",
        _envelope(),
        lambda body, _: _check_envelope(body, attachment_kept=True),
    ),
    Case(
        "sentry-envelope-attachment-dropped",
        "/api/41/envelope/",
        "application/x-sentry-envelope",
        _envelope(),
        lambda body, _: _check_envelope(body, attachment_kept=False),
    ),
    Case(
        "sentry-store-json", "/api/42/store/", "application/json", _store_json(), _check_store_json
    ),
    Case(
        "sentry-store-base64-zlib",
        "/api/42/store/",
        "application/octet-stream",
        _store_base64_zlib(),
        _check_store_base64_zlib,
    ),
    Case(
        "otlp-json-traces",
        "/v1/traces",
        "application/json",
        otlp_to_json(_traces()),
        _json_check(ExportTraceServiceRequest, _check_traces),
    ),
    Case(
        "otlp-json-logs",
        "/v1/logs",
        "application/json",
        otlp_to_json(_logs()),
        _json_check(ExportLogsServiceRequest, _check_logs),
    ),
    Case(
        "otlp-protobuf-traces",
        "/v1/traces",
        "application/x-protobuf",
        _traces().SerializeToString(),
        _protobuf_check(ExportTraceServiceRequest, _check_traces),
    ),
    Case(
        "otlp-protobuf-logs",
        "/v1/logs",
        "application/x-protobuf",
        _logs().SerializeToString(),
        _protobuf_check(ExportLogsServiceRequest, _check_logs),
    ),
    Case(
        "multipart-attachment-drop",
        "/feedback/drop",
        MULTIPART,
        _multipart(),
        _check_multipart_dropped,
    ),
    Case(
        "multipart-attachment-keep",
        "/feedback/keep",
        MULTIPART,
        _multipart(),
        _check_multipart_kept,
        # `attachments: keep` forwards files untouched, their names included.
        allowed=(SCREENSHOT_FILENAME.encode(),),
    ),
    Case(
        "multipart-attachment-keep-scrub-filename",
        "/feedback/scrub-name",
        MULTIPART,
        _multipart(),
        _check_multipart_scrubbed_name,
    ),
)


@pytest.fixture
def vendor(module_upstream):
    module_upstream.reset()
    module_upstream.status = UPSTREAM_STATUS
    module_upstream.reply = UPSTREAM_REPLY
    return module_upstream


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda encoding: encoding.id)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_format_and_encoding(proxy: str, vendor, case: Case, encoding: Encoding) -> None:
    body = encoding.encode(case.body)
    headers = {"Content-Type": case.content_type}
    if encoding.header is not None:
        headers["Content-Encoding"] = encoding.header
    async with (
        aiohttp.ClientSession(auto_decompress=False) as client,
        client.post(proxy + case.path, data=body, headers=headers) as response,
    ):
        assert response.status == UPSTREAM_STATUS
        assert await response.read() == UPSTREAM_REPLY

    (arrival,) = vendor.arrivals
    assert arrival.method == "POST"
    assert arrival.path_qs == case.path
    assert arrival.headers.get("Content-Encoding") == encoding.header
    assert arrival.headers.get("Content-Type") == case.content_type
    assert "Transfer-Encoding" not in arrival.headers
    assert int(arrival.headers["Content-Length"]) == len(arrival.raw)
    decoded = encoding.decode_arrival(arrival.raw, arrival.headers.get("Content-Encoding"))
    assert_no_canaries(decoded, case.allowed)
    case.check(decoded, case.content_type)


async def _post(proxy: str, path: str, content_type: str, body: bytes) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.post(proxy + path, data=body, headers={"Content-Type": content_type}) as response,
    ):
        assert response.status == UPSTREAM_STATUS


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", orjson.dumps([analytics_event(0), analytics_event(1)])),
        ("application/x-ndjson", _ndjson()),
    ],
    ids=["json-array", "ndjson"],
)
async def test_top_level_event_lists_hash_ids_once(
    proxy: str, vendor, content_type: str, body: bytes
) -> None:
    await _post(proxy, "/v1/batch", content_type, body)
    (arrival,) = vendor.arrivals
    events = [orjson.loads(line) for line in arrival.body.splitlines()]
    events = events[0] if content_type == "application/json" else events
    assert [event["userId"] for event in events] == [HASHED_USER_ID] * len(events)


async def test_scrubbed_attachment_filename_loses_email_before_extension(
    proxy: str, vendor
) -> None:
    body = build_multipart(
        [("message", "see attached")], [("screenshot", f"{EMAIL}.png", "image/png", SCREENSHOT)]
    )
    await _post(proxy, "/feedback/scrub-name", MULTIPART, body)
    (arrival,) = vendor.arrivals
    parts = parse_multipart(arrival.body, MULTIPART)
    assert [(part.name, part.filename) for part in parts] == [
        ("message", None),
        ("screenshot", "[email].png"),
    ]


# --- GET beacons (query strings, no body) ------------------------------------------------


async def _get(proxy: str, path_qs: str) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.get(proxy + path_qs) as response,
    ):
        assert response.status == UPSTREAM_STATUS
        assert await response.read() == UPSTREAM_REPLY


async def test_get_pageview_beacon(proxy: str, vendor) -> None:
    query = query_string(
        [
            ("e", "pv"),
            ("url", URL),
            ("email", EMAIL),
            ("uid", USER_ID),
            ("page", "Profile Settings"),
            ("note", MESSAGE),
            ("tz", "Europe/Berlin"),
        ]
    )
    await _get(proxy, "/collect/i?" + query)

    (arrival,) = vendor.arrivals
    assert arrival.method == "GET" and arrival.raw == b""
    path, _, sent_query = arrival.path_qs.partition("?")
    assert path == "/collect/i"
    assert_no_canaries(sent_query.encode())
    pairs = parse_qsl(sent_query, keep_blank_values=True, strict_parsing=True)
    assert [name for name, _ in pairs] == ["e", "url", "email", "uid", "page", "note", "tz"]
    fields = dict(pairs)
    assert fields["e"] == "pv"
    assert fields["url"] == GENERALIZED_URL
    assert fields["email"] == "[email]"
    assert fields["uid"] == HASHED_USER_ID
    assert fields["page"] == "Profile Settings"
    assert fields["note"] == SCRUBBED_MESSAGE
    assert fields["tz"] == "Europe/Berlin"


async def test_get_beacon_with_base64_json_value(proxy: str, vendor) -> None:
    context = {
        "schema": "iglu:com.example/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.example/user/jsonschema/1-0-0",
                "data": {"userId": USER_ID, "email": EMAIL, "note": MESSAGE, "plan": "pro"},
            }
        ],
    }
    encoded = base64.urlsafe_b64encode(orjson.dumps(context)).decode().rstrip("=")
    await _get(proxy, f"/collect/i?e=ue&tv=js-3.0&cx={encoded}")

    (arrival,) = vendor.arrivals
    path, _, sent_query = arrival.path_qs.partition("?")
    assert path == "/collect/i"
    assert_no_canaries(sent_query.encode())
    fields = dict(parse_qsl(sent_query, keep_blank_values=True, strict_parsing=True))
    assert (fields["e"], fields["tv"]) == ("ue", "js-3.0")
    cx = fields["cx"]
    assert "=" not in cx and "+" not in cx and "/" not in cx, "base64url, unpadded, as sent"
    sent = orjson.loads(base64.urlsafe_b64decode(cx + "=" * (-len(cx) % 4)))
    assert sent["schema"] == context["schema"]
    (entity,) = sent["data"]
    assert entity["schema"] == "iglu:com.example/user/jsonschema/1-0-0"
    assert entity["data"] == {
        "userId": HASHED_USER_ID,
        "email": "[email]",
        "note": SCRUBBED_MESSAGE,
        "plan": "pro",
    }


async def test_canary_search_sees_through_encodings() -> None:
    """The leak check itself: canaries hidden in base64, zlib or percent-encoding are
    found, so a passing matrix means they really are gone."""
    from tests.e2e.payloads import leaked_canaries

    assert leaked_canaries(_store_base64_zlib()) != []
    assert "email" in leaked_canaries(_form())
    assert "home path user" in leaked_canaries(f"/home/{HOME_USER}/x".encode())
    assert leaked_canaries(b'{"ok": "' + urlsplit(GENERALIZED_URL).path.encode() + b'"}') == []
