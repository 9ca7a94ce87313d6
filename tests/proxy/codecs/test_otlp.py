import base64
import contextlib
import math
from pathlib import Path

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from filters.outcome import PayloadError
from proxy.codecs.otlp import scrub_otlp_json, scrub_otlp_protobuf
from proxy.codecs.otlp_values import any_value_to_python, python_to_any_value
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

FIXTURES = Path(__file__).parents[2] / "fixtures" / "codecs" / "otlp"
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("0102030405060708")


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def s(text: str) -> AnyValue:
    return AnyValue(string_value=text)


ALL_TYPES = [
    kv("str", s("alice@example.com")),
    kv("int", AnyValue(int_value=-(2**63))),
    kv("big", AnyValue(int_value=2**63 - 1)),
    kv("double", AnyValue(double_value=1.0)),
    kv("nan", AnyValue(double_value=math.nan)),
    kv("inf", AnyValue(double_value=-math.inf)),
    kv("bool", AnyValue(bool_value=False)),
    kv("bytes", AnyValue(bytes_value=b"\x00\xffid")),
    kv("empty", AnyValue()),
    kv("nul", s("\x00bytes:not really bytes")),
    kv("array", AnyValue(array_value=ArrayValue(values=[s("a"), AnyValue(int_value=1)]))),
    kv(
        "kvlist",
        AnyValue(
            kvlist_value=KeyValueList(
                values=[kv("nested", AnyValue(kvlist_value=KeyValueList(values=[kv("x", s("y"))])))]
            )
        ),
    ),
]

RESOURCE = Resource(
    attributes=[kv("service.name", s("issue-tracker")), kv("host.name", s("build-7"))],
    dropped_attributes_count=1,
)
SCOPE = InstrumentationScope(name="com.acme", version="1.0", attributes=[kv("k", s("v"))])


def make_traces() -> ExportTraceServiceRequest:
    span = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=PARENT_ID,
        trace_state="vendor=1",
        flags=257,
        name="GET /rest/api/issue",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1714557600000000000,
        end_time_unix_nano=1714557600500000000,
        attributes=ALL_TYPES,
        events=[
            Span.Event(
                time_unix_nano=1714557600100000000,
                name="exception",
                attributes=[kv("exception.message", s("no user bob@example.com"))],
            )
        ],
        links=[
            Span.Link(trace_id=TRACE_ID, span_id=PARENT_ID, attributes=[kv("l", s("v"))], flags=1)
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="failed"),
    )
    dropped = Span(trace_id=TRACE_ID, span_id=PARENT_ID, attributes=[kv("event", s("drop-me"))])
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=RESOURCE,
                scope_spans=[ScopeSpans(scope=SCOPE, spans=[span, dropped], schema_url="u")],
                schema_url="https://opentelemetry.io/schemas/1.24.0",
            ),
            ResourceSpans(
                resource=Resource(attributes=[kv("service.name", s("other"))]),
                scope_spans=[ScopeSpans(scope=SCOPE, spans=[dropped])],
            ),
        ]
    )


def make_logs() -> ExportLogsServiceRequest:
    record = LogRecord(
        time_unix_nano=1714557600000000000,
        observed_time_unix_nano=1714557600000000001,
        severity_number=9,
        severity_text="INFO",
        body=AnyValue(kvlist_value=KeyValueList(values=[kv("msg", s("login alice@example.com"))])),
        attributes=ALL_TYPES,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        flags=1,
        event_name="login",
    )
    plain = LogRecord(body=s("plain body"), severity_number=13)
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=RESOURCE, scope_logs=[ScopeLogs(scope=SCOPE, log_records=[record, plain])]
            )
        ]
    )


def make_metrics() -> ExportMetricsServiceRequest:
    attributes = [kv("user", s("carol@example.com")), kv("code", AnyValue(int_value=200))]
    exemplar = m.Exemplar(
        filtered_attributes=[kv("x", s("y"))],
        time_unix_nano=5,
        as_double=1.5,
        span_id=SPAN_ID,
        trace_id=TRACE_ID,
    )
    metrics = [
        m.Metric(
            name="gauge",
            unit="1",
            gauge=m.Gauge(
                data_points=[
                    m.NumberDataPoint(attributes=attributes, time_unix_nano=1, as_double=0.25),
                    m.NumberDataPoint(attributes=[kv("event", s("drop-me"))], as_int=3),
                ]
            ),
        ),
        m.Metric(
            name="sum",
            description="requests",
            sum=m.Sum(
                data_points=[m.NumberDataPoint(as_int=-7, exemplars=[exemplar], flags=1)],
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                is_monotonic=True,
            ),
            metadata=[kv("meta", s("data"))],
        ),
        m.Metric(
            name="histogram",
            histogram=m.Histogram(
                data_points=[
                    m.HistogramDataPoint(
                        attributes=attributes,
                        count=3,
                        sum=0.0,
                        bucket_counts=[1, 2],
                        explicit_bounds=[10.0],
                        min=0.0,
                        max=9.5,
                    )
                ],
                aggregation_temporality=m.AGGREGATION_TEMPORALITY_DELTA,
            ),
        ),
        m.Metric(
            name="exponential",
            exponential_histogram=m.ExponentialHistogram(
                data_points=[
                    m.ExponentialHistogramDataPoint(
                        count=2,
                        scale=-3,
                        zero_count=1,
                        positive=m.ExponentialHistogramDataPoint.Buckets(
                            offset=-2, bucket_counts=[1]
                        ),
                        zero_threshold=0.001,
                    )
                ]
            ),
        ),
        m.Metric(
            name="summary",
            summary=m.Summary(
                data_points=[
                    m.SummaryDataPoint(
                        count=4,
                        sum=10.0,
                        quantile_values=[
                            m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0)
                        ],
                    )
                ]
            ),
        ),
        m.Metric(name="empty-gauge", gauge=m.Gauge()),
    ]
    return ExportMetricsServiceRequest(
        resource_metrics=[
            m.ResourceMetrics(
                resource=RESOURCE, scope_metrics=[m.ScopeMetrics(scope=SCOPE, metrics=metrics)]
            )
        ]
    )


SIGNALS = [
    pytest.param(make_traces, "/v1/traces", id="traces"),
    pytest.param(make_logs, "/v1/logs", id="logs"),
    pytest.param(make_metrics, "/v1/metrics", id="metrics"),
]


def to_otlp_json(message) -> dict:
    """OTLP JSON as an exporter writes it: ProtoJSON with hex trace and span ids."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)

    def hexify(node):
        if isinstance(node, list):
            return [hexify(item) for item in node]
        if isinstance(node, dict):
            return {
                key: base64.b64decode(value).hex()
                if key in ("traceId", "spanId", "parentSpanId")
                else hexify(value)
                for key, value in node.items()
            }
        return node

    return hexify(document)


def from_otlp_json(document: dict, message_type):
    def unhex(node):
        if isinstance(node, list):
            return [unhex(item) for item in node]
        if isinstance(node, dict):
            return {
                key: base64.b64encode(bytes.fromhex(value)).decode()
                if key in ("traceId", "spanId", "parentSpanId")
                else unhex(value)
                for key, value in node.items()
            }
        return node

    return json_format.ParseDict(unhex(document), message_type())


def protobuf_ctx(engine, path):
    return make_ctx(engine, content_type="application/x-protobuf", path=path)


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "path"), SIGNALS)
def test_protobuf_identity_round_trip(make, path):
    message = make()
    result = scrub_otlp_protobuf(message.SerializeToString(), protobuf_ctx(FakeEngine(True), path))
    again = type(message).FromString(result.body)
    assert again == message or _equal_with_nan(again, message)


def _equal_with_nan(left, right) -> bool:
    # NaN != NaN, so compare the serialized bytes instead (deterministic for one schema).
    return left.SerializeToString(deterministic=True) == right.SerializeToString(deterministic=True)


@pytest.mark.parametrize(("make", "path"), SIGNALS)
def test_json_identity_round_trip(make, path):
    message = make()
    document = to_otlp_json(message)
    result = scrub_otlp_json(orjson.dumps(document), make_ctx(FakeEngine(True), path=path))
    assert orjson.loads(result.body) == document
    assert _equal_with_nan(from_otlp_json(orjson.loads(result.body), type(message)), message)


def test_json_fixture_identity_round_trip():
    body = (FIXTURES / "logs.json").read_bytes()
    result = scrub_otlp_json(body, make_ctx(FakeEngine(True), path="/v1/logs"))
    assert orjson.loads(result.body) == orjson.loads(body)


# --- the friendly document -------------------------------------------------------------------


def test_friendly_document_for_logs():
    engine = FakeEngine(identity=True)
    scrub_otlp_json((FIXTURES / "logs.json").read_bytes(), make_ctx(engine, path="/v1/logs"))
    document, events = engine.calls[0]
    assert events == "resourceLogs[*].scopeLogs[*].logRecords[*]"
    resource = document["resourceLogs"][0]["resource"]
    assert resource["attributes"] == {
        "service.name": "issue-tracker",
        "host.name": "build-7.acme.internal",
        "process.pid": 4242,
    }
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["body"] == "login by alice@example.com"
    assert record["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert record["attributes"] == {
        "user.email": "alice@example.com",
        "retries": 3,
        "ratio": 0.5,
        "ok": True,
        "tags": ["a", 1],
        "ctx": {"ip": "10.1.2.3"},
        "raw": "\x00bytes:aGVsbG8=",
        "nothing": None,
    }


def test_friendly_document_for_traces_uses_hex_ids():
    engine = FakeEngine(identity=True)
    scrub_otlp_protobuf(make_traces().SerializeToString(), protobuf_ctx(engine, "/v1/traces"))
    document, events = engine.calls[0]
    assert events == "resourceSpans[*].scopeSpans[*].spans[*]"
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID.hex()
    assert span["parentSpanId"] == PARENT_ID.hex()
    assert span["links"][0]["spanId"] == PARENT_ID.hex()
    assert span["events"][0]["attributes"] == {"exception.message": "no user bob@example.com"}
    assert span["attributes"]["nan"] == "\x00double:NaN"
    assert span["attributes"]["double"] == 1.0
    assert span["attributes"]["nul"] == "\x00str:\x00bytes:not really bytes"
    assert span["kind"] == 2


def test_friendly_document_for_metrics_lifts_data_points():
    engine = FakeEngine(identity=True)
    scrub_otlp_protobuf(make_metrics().SerializeToString(), protobuf_ctx(engine, "/v1/metrics"))
    document, events = engine.calls[0]
    assert events == "resourceMetrics[*].scopeMetrics[*].metrics[*].dataPoints[*]"
    metrics = document["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    assert [metric.get("dataType") for metric in metrics] == [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
        "gauge",
    ]
    assert metrics[0]["dataPoints"][0]["attributes"] == {"user": "carol@example.com", "code": 200}
    assert metrics[1]["isMonotonic"] is True
    assert metrics[1]["metadata"] == {"meta": "data"}
    assert metrics[1]["dataPoints"][0]["exemplars"][0]["filteredAttributes"] == {"x": "y"}
    assert metrics[1]["dataPoints"][0]["exemplars"][0]["spanId"] == SPAN_ID.hex()


# --- scrubbing and dropping ----------------------------------------------------------------


def test_protobuf_traces_scrubbed_and_dropped():
    result = scrub_otlp_protobuf(
        make_traces().SerializeToString(), protobuf_ctx(FakeEngine(), "/v1/traces")
    )
    message = ExportTraceServiceRequest.FromString(result.body)
    assert len(message.resource_spans) == 1, "resource left without spans is pruned"
    spans = message.resource_spans[0].scope_spans[0].spans
    assert len(spans) == 1
    attributes = {item.key: item.value for item in spans[0].attributes}
    assert attributes["str"] == s("[email]")
    assert attributes["bytes"] == AnyValue(bytes_value=b"\x00\xffid")
    assert attributes["int"] == AnyValue(int_value=-(2**63))
    assert spans[0].events[0].attributes[0].value == s("[email]")
    assert spans[0].trace_id == TRACE_ID
    assert (result.outcome.events_in, result.outcome.events_out) == (3, 1)


def test_protobuf_logs_body_scrubbed():
    result = scrub_otlp_protobuf(make_logs().SerializeToString(), protobuf_ctx(None, "/v1/logs"))
    message = ExportLogsServiceRequest.FromString(result.body)
    record = message.resource_logs[0].scope_logs[0].log_records[0]
    assert record.body.kvlist_value.values[0].value == s("[email]")
    assert record.event_name == "login"


def test_metrics_data_point_dropped_and_empty_metric_pruned():
    result = scrub_otlp_protobuf(
        make_metrics().SerializeToString(), protobuf_ctx(None, "/v1/metrics")
    )
    message = ExportMetricsServiceRequest.FromString(result.body)
    metrics = message.resource_metrics[0].scope_metrics[0].metrics
    assert [metric.name for metric in metrics] == [
        "gauge",
        "sum",
        "histogram",
        "exponential",
        "summary",
    ]
    assert len(metrics[0].gauge.data_points) == 1
    assert metrics[0].gauge.data_points[0].attributes[0].value == s("[email]")
    assert metrics[1].sum.is_monotonic
    assert metrics[2].histogram.data_points[0].HasField("min")


def test_json_logs_scrubbed_and_dropped():
    body = (FIXTURES / "logs.json").read_bytes()
    result = scrub_otlp_json(body, make_ctx(path="/v1/logs"))
    document = orjson.loads(result.body)
    records = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert len(records) == 1
    assert records[0]["body"] == {"stringValue": "[email]"}
    assert records[0]["attributes"][0] == {"key": "user.email", "value": {"stringValue": "[email]"}}
    assert records[0]["traceId"] == "5b8efff798038103d269b633813fc60c"


@pytest.mark.parametrize(("make", "path"), SIGNALS)
def test_every_event_dropped_is_empty(make, path):
    class DropAll(FakeEngine):
        def scrub(self, document, events):
            result = super().scrub(document, events)
            result.outcome.events_out = 0
            return result

    result = scrub_otlp_protobuf(make().SerializeToString(), protobuf_ctx(DropAll(), path))
    assert result.empty
    assert result.body == b""


def test_rule_that_hashes_an_int_attribute_writes_a_string():
    class HashInts(FakeEngine):
        def scrub(self, document, events):
            records = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
            records[0]["attributes"]["retries"] = "h:3f2a"
            del records[0]["attributes"]["ratio"]
            return super().scrub(document, events)

    body = (FIXTURES / "logs.json").read_bytes()
    result = scrub_otlp_json(body, make_ctx(HashInts(identity=True), path="/v1/logs"))
    attributes = orjson.loads(result.body)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0][
        "attributes"
    ]
    assert {"key": "retries", "value": {"stringValue": "h:3f2a"}} in attributes
    assert all(item["key"] != "ratio" for item in attributes)


def test_json_numbers_are_normalized_to_otlp_json_form():
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "name": "x",
                                "startTimeUnixNano": 1714557600000000000,
                                "attributes": [
                                    {"key": "i", "value": {"intValue": 5}},
                                    {"key": "d", "value": {"doubleValue": 2}},
                                    {"key": "n", "value": {"double_value": "NaN"}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    result = scrub_otlp_json(orjson.dumps(document), make_ctx(FakeEngine(True), path="/v1/traces"))
    span = orjson.loads(result.body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["startTimeUnixNano"] == 1714557600000000000, "untouched fields stay as sent"
    assert span["attributes"] == [
        {"key": "i", "value": {"intValue": "5"}},
        {"key": "d", "value": {"doubleValue": 2.0}},
        {"key": "n", "value": {"doubleValue": "NaN"}},
    ]


def test_signal_from_top_level_key_when_path_is_unknown():
    body = (FIXTURES / "logs.json").read_bytes()
    result = scrub_otlp_json(body, make_ctx(FakeEngine(True), path="/otel/ingest"))
    assert orjson.loads(result.body) == orjson.loads(body)


# --- AnyValue conversion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "any_value",
    [
        {},
        {"stringValue": ""},
        {"stringValue": "\x00x"},
        {"boolValue": True},
        {"intValue": "-9223372036854775808"},
        {"doubleValue": 1.5},
        {"doubleValue": "Infinity"},
        {"bytesValue": "AAE="},
        {"stringValueStrindex": 4},
        {"arrayValue": {"values": [{"stringValue": "a"}, {}]}},
        {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}},
    ],
    ids=str,
)
def test_any_value_round_trip(any_value):
    assert python_to_any_value(any_value_to_python(any_value)) == any_value


# --- malformed input ------------------------------------------------------------------------

MALFORMED_JSON = [
    pytest.param(b"[]", id="not-object"),
    pytest.param(b'{"resourceLogs": {}}', id="resources-not-list"),
    pytest.param(b'{"resourceLogs": [{"scopeLogs": [1]}]}', id="scope-not-object"),
    pytest.param(
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":{"a":1}}]}]}]}',
        id="attributes-not-list",
    ),
    pytest.param(
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"value":{}}]}]}]}]}',
        id="attribute-without-key",
    ),
    pytest.param(
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"x1"}}]}]}]}',
        id="bad-int",
    ),
    pytest.param(
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"a":1,"b":2}}]}]}]}',
        id="two-value-fields",
    ),
    pytest.param(
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"99999999999999999999"}}]}]}]}',
        id="int-out-of-range",
    ),
    pytest.param(b'{"resourceLogs": [', id="cut"),
]


@pytest.mark.parametrize("body", MALFORMED_JSON)
def test_malformed_json(body):
    with pytest.raises(PayloadError):
        scrub_otlp_json(body, make_ctx(path="/v1/logs"))


def test_metrics_with_two_kinds_of_data_are_refused():
    body = orjson.dumps(
        {
            "resourceMetrics": [
                {"scopeMetrics": [{"metrics": [{"gauge": {}, "sum": {"dataPoints": []}}]}]}
            ]
        }
    )
    with pytest.raises(PayloadError):
        scrub_otlp_json(body, make_ctx(path="/v1/metrics"))


def test_deeply_nested_values_are_refused():
    value: dict = {"stringValue": "x"}
    for _ in range(70):  # deeper than MAX_DEPTH (64), within orjson's own limit
        value = {"arrayValue": {"values": [value]}}
    body = orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": value}]}]}]})
    with pytest.raises(PayloadError):
        scrub_otlp_json(body, make_ctx(path="/v1/logs"))


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05abc", b"not protobuf at all"], ids=str)
def test_malformed_protobuf(body):
    with pytest.raises(PayloadError):
        scrub_otlp_protobuf(body, protobuf_ctx(None, "/v1/traces"))


def test_protobuf_needs_a_signal_path():
    with pytest.raises(PayloadError):
        scrub_otlp_protobuf(make_logs().SerializeToString(), protobuf_ctx(None, "/ingest"))


# --- properties ---------------------------------------------------------------------------------

MESSAGES = {"/v1/traces": make_traces(), "/v1/logs": make_logs(), "/v1/metrics": make_metrics()}
SERIALIZED = {path: message.SerializeToString() for path, message in MESSAGES.items()}
JSON_BODIES = {path: orjson.dumps(to_otlp_json(message)) for path, message in MESSAGES.items()}


@settings(max_examples=250, deadline=None)
@given(
    path=st.sampled_from(sorted(SERIALIZED)),
    cut=st.integers(min_value=0, max_value=2000),
    flip=st.integers(min_value=0, max_value=2000),
    byte=st.integers(min_value=0, max_value=255),
)
def test_mutated_protobuf(path, cut, flip, byte):
    body = bytearray(SERIALIZED[path])
    if flip < len(body):
        body[flip] = byte
    with contextlib.suppress(PayloadError):
        scrub_otlp_protobuf(bytes(body[:cut]), protobuf_ctx(None, path))


@settings(max_examples=250, deadline=None)
@given(
    path=st.sampled_from(sorted(JSON_BODIES)),
    cut=st.integers(min_value=0, max_value=4000),
    flip=st.integers(min_value=0, max_value=4000),
    byte=st.sampled_from(list(b'{}[]":,0a-. ')),
)
def test_mutated_json(path, cut, flip, byte):
    body = bytearray(JSON_BODIES[path])
    if flip < len(body):
        body[flip] = byte
    for candidate in (bytes(body), bytes(body[:cut])):
        with contextlib.suppress(PayloadError):
            scrub_otlp_json(candidate, make_ctx(path=path))


KEYS = ["resourceLogs", "scopeLogs", "logRecords", "attributes", "body", "key", "value"]
KEYS += ["stringValue", "intValue", "kvlistValue", "values", "arrayValue", "traceId"]
json_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5)
json_any = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(KEYS),
            children,
            max_size=3,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(document=json_any)
def test_random_json_shapes(document):
    with contextlib.suppress(PayloadError):
        scrub_otlp_json(orjson.dumps(document), make_ctx(path="/v1/logs"))


def test_protobuf_id_of_another_size_is_refused():
    """A 20-byte "trace id" would carry text past the detectors as opaque hex (found by
    fuzzing: an e-mail address in trace_id)."""
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[ScopeSpans(spans=[Span(trace_id=b"jane.doe@example.com", name="s")])]
            )
        ]
    )
    with pytest.raises(PayloadError, match="neither 8 nor 16 bytes"):
        scrub_otlp_protobuf(request.SerializeToString(), make_ctx(path="/v1/traces"))
