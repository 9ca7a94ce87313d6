"""Real telemetry SDKs from PyPI, pointed at scrubgate instead of the vendor.

Each SDK runs unmodified in a worker thread (``asyncio.to_thread``: the SDKs block) while
scrubgate and the recording upstream run on the test's event loop. Each must report
success — no error callback, no lost event, exporter result ``SUCCESS`` — and the upstream
must receive scrubbed data it can decode: no canary, structure intact.

SDKs (the ``test`` extra of pyproject.toml): segment-analytics-python, sentry-sdk,
opentelemetry-sdk with opentelemetry-exporter-otlp-proto-http.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.payloads import (
    ATTACHMENT,
    ATTACHMENT_FILENAME,
    CARD,
    EMAIL,
    GENERALIZED_URL,
    HASHED_USER_ID,
    IP,
    MESSAGE,
    PHONE,
    PREAMBLE,
    SCRUBBED_MESSAGE,
    URL,
    USER_ID,
    assert_no_canaries,
    attribute_dict,
    parse_envelope,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = (
    PREAMBLE
    + """
routes:
  - {name: segment, match: {path_prefix: /v1/batch, methods: [POST]}, upstream: "{upstream}", category: analytics, policy: p}
  - name: sentry
    match: {path_regex: "^/api/[0-9]+/envelope/$", methods: [POST]}
    upstream: "{upstream}"
    category: crash
    policy: p
    attachments: keep-scrub-filename
  - {name: otlp, match: {path_regex: "^/v1/(traces|logs)$", methods: [POST]}, upstream: "{upstream}", category: traces, policy: p}
"""
)


@pytest.fixture
def sdk_errors() -> Iterator[list[logging.LogRecord]]:
    """Warnings and errors the SDKs log (each logs failures instead of raising)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.WARNING)
    loggers = [logging.getLogger(name) for name in ("segment", "sentry_sdk", "opentelemetry")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


# --- Segment -----------------------------------------------------------------------------


def _run_segment(base: str) -> list[Exception]:
    from segment.analytics.client import Client

    errors: list[Exception] = []
    client = Client(
        write_key="e2e-write-key",
        host=base,
        gzip=True,
        max_retries=1,
        upload_interval=0.05,
        on_error=lambda error, _batch: errors.append(error),
    )
    client.identify(
        USER_ID,
        traits={"email": EMAIL, "phone": PHONE, "plan": "pro"},
        context={"ip": IP},
    )
    client.track(
        USER_ID,
        "Settings Saved",
        properties={"plan": "pro", "seats": 12, "note": MESSAGE},
        context={"ip": IP, "page": {"url": URL, "title": "Profile"}},
    )
    client.shutdown()
    return errors


async def test_segment_analytics_python(proxy: str, vendor, sdk_errors) -> None:
    errors = await asyncio.to_thread(_run_segment, proxy)
    assert errors == []
    assert [record.getMessage() for record in sdk_errors] == []

    assert vendor.arrivals, "the SDK sent nothing"
    events = []
    for arrival in vendor.arrivals:
        assert arrival.path_qs == "/v1/batch"
        assert arrival.headers["Content-Encoding"] == "gzip"
        assert arrival.headers["Authorization"].startswith("Basic ")
        assert int(arrival.headers["Content-Length"]) == len(arrival.raw)
        assert_no_canaries(arrival.body)
        document = orjson.loads(arrival.body)
        assert document["writeKey"] == "e2e-write-key"
        events += document["batch"]
    by_type = {event["type"]: event for event in events}
    assert sorted(by_type) == ["identify", "track"]
    identify, track = by_type["identify"], by_type["track"]
    assert identify["userId"] == track["userId"] == HASHED_USER_ID
    assert identify["traits"] == {"email": "[email]", "phone": "[phone]", "plan": "pro"}
    assert track["event"] == "Settings Saved"
    assert track["properties"] == {"plan": "pro", "seats": 12, "note": SCRUBBED_MESSAGE}
    assert track["context"]["page"] == {"url": GENERALIZED_URL, "title": "Profile"}
    assert track["context"]["library"]["name"] == "analytics-python"


# --- Sentry ------------------------------------------------------------------------------


def _checkout(card: str, email: str) -> None:
    note = MESSAGE  # a local variable the SDK reports with the frame
    raise ValueError(f"payment failed for {email} with card {card} ({len(note)})")


def _run_sentry(dsn: str) -> list[tuple[str, Any]]:
    import sentry_sdk
    from sentry_sdk.transport import HttpTransport

    lost: list[tuple[str, Any]] = []

    class RecordingTransport(HttpTransport):
        def record_lost_event(self, reason, data_category=None, item=None, *, quantity=1):
            lost.append((reason, item.data_category if item is not None else data_category))
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    client = sentry_sdk.Client(
        dsn=dsn,
        transport=RecordingTransport,
        default_integrations=False,
        auto_enabling_integrations=False,
        include_local_variables=True,
        release="app@1.2.3",
        environment="production",
    )
    with sentry_sdk.new_scope() as scope:
        scope.set_client(client)
        scope.set_user({"id": USER_ID, "email": EMAIL, "ip_address": IP})
        scope.set_tag("component", "billing")
        scope.add_attachment(bytes=ATTACHMENT, filename=ATTACHMENT_FILENAME)
        try:
            _checkout(CARD, EMAIL)
        except ValueError:
            sentry_sdk.capture_exception()
        sentry_sdk.capture_message(MESSAGE)
    client.flush(timeout=10)
    client.close(timeout=10)
    return lost


async def test_sentry_sdk(proxy: str, vendor, sdk_errors) -> None:
    port = proxy.rsplit(":", 1)[1]
    lost = await asyncio.to_thread(_run_sentry, f"http://public@127.0.0.1:{port}/42")
    assert lost == []
    assert [record.getMessage() for record in sdk_errors] == []

    events, attachments = [], []
    for arrival in vendor.arrivals:
        assert arrival.path_qs.startswith("/api/42/envelope/")
        assert "sentry_key=public" in arrival.headers["X-Sentry-Auth"]
        assert arrival.headers.get("Content-Encoding") in ("br", "gzip")
        assert int(arrival.headers["Content-Length"]) == len(arrival.raw)
        assert_no_canaries(arrival.body)
        _, items = parse_envelope(arrival.body)
        events += [orjson.loads(payload) for header, payload in items if header["type"] == "event"]
        attachments += [
            (header, payload) for header, payload in items if header["type"] == "attachment"
        ]
    assert len(events) == 2, "the exception and the message"
    for event in events:
        assert event["user"]["id"] == HASHED_USER_ID
        assert event["user"]["email"] == "[email]"
        assert event["release"] == "app@1.2.3"
        assert event["environment"] == "production"
        assert event["tags"]["component"] == "billing"
    (error,) = [event for event in events if "exception" in event]
    exception = error["exception"]["values"][-1]
    assert exception["type"] == "ValueError"
    assert exception["value"] == f"payment failed for [email] with card [card] ({len(MESSAGE)})"
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "_checkout"
    assert set(frame["vars"]) == {"card", "email", "note"}
    (message,) = [event for event in events if "exception" not in event]
    assert SCRUBBED_MESSAGE in orjson.dumps(message).decode()
    assert len(attachments) == 2, "the scope's attachment goes with both events"
    for header, payload in attachments:
        assert header["filename"] == "/home/[user]/crash.log"
        assert payload == ATTACHMENT


# --- OpenTelemetry -----------------------------------------------------------------------

RESOURCE = {"service.name": "checkout", "deployment.environment": "production"}


def _run_otel_traces(endpoint: str) -> Any:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("e2e.sdk", "0.1")
    attributes = {"user_id": USER_ID, "url": URL, "client.address": IP, "note": MESSAGE}
    with tracer.start_as_current_span("POST /settings", attributes=attributes) as span:
        span.set_attribute("http.response.status_code", 200)
        span.add_event("exception", {"exception.message": f"mail {EMAIL} failed"})
        with tracer.start_as_current_span("SELECT users"):
            pass
    exporter = OTLPSpanExporter(endpoint=endpoint, compression=Compression.Gzip, timeout=10)
    try:
        return exporter.export(memory.get_finished_spans())
    finally:
        exporter.shutdown()
        provider.shutdown()


async def test_opentelemetry_span_exporter(proxy: str, vendor, sdk_errors) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    result = await asyncio.to_thread(_run_otel_traces, proxy + "/v1/traces")
    assert result == SpanExportResult.SUCCESS
    assert [record.getMessage() for record in sdk_errors] == []

    (arrival,) = vendor.arrivals
    assert arrival.headers["Content-Type"] == "application/x-protobuf"
    assert arrival.headers["Content-Encoding"] == "gzip"
    assert int(arrival.headers["Content-Length"]) == len(arrival.raw)
    assert_no_canaries(arrival.body)
    request = ExportTraceServiceRequest()
    request.ParseFromString(arrival.body)
    (resource_spans,) = request.resource_spans
    resource = attribute_dict(resource_spans.resource.attributes)
    assert {key: resource[key] for key in RESOURCE} == RESOURCE
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("e2e.sdk", "0.1")
    spans = {span.name: span for span in scope_spans.spans}
    assert sorted(spans) == ["POST /settings", "SELECT users"]
    parent, child = spans["POST /settings"], spans["SELECT users"]
    assert child.parent_span_id == parent.span_id and child.trace_id == parent.trace_id
    assert attribute_dict(parent.attributes) == {
        "user_id": HASHED_USER_ID,
        "url": GENERALIZED_URL,
        "client.address": "[ip]",
        "note": SCRUBBED_MESSAGE,
        "http.response.status_code": 200,
    }
    (event,) = parent.events
    assert attribute_dict(event.attributes) == {"exception.message": "mail [email] failed"}


def _run_otel_logs(endpoint: str) -> Any:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("e2e.sdk.logs")
    for attempt in range(2):
        logger.emit(
            body=MESSAGE,
            severity_text="ERROR",
            severity_number=SeverityNumber.ERROR,
            attributes={"user_id": USER_ID, "client.address": IP, "attempt": attempt},
        )
    exporter = OTLPLogExporter(endpoint=endpoint, compression=Compression.Deflate, timeout=10)
    try:
        return exporter.export(memory.get_finished_logs())
    finally:
        exporter.shutdown()
        provider.shutdown()


async def test_opentelemetry_log_exporter(proxy: str, vendor, sdk_errors) -> None:
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    result = await asyncio.to_thread(_run_otel_logs, proxy + "/v1/logs")
    assert result == LogRecordExportResult.SUCCESS
    assert [record.getMessage() for record in sdk_errors] == []

    (arrival,) = vendor.arrivals
    assert arrival.headers["Content-Encoding"] == "deflate"
    assert int(arrival.headers["Content-Length"]) == len(arrival.raw)
    assert_no_canaries(arrival.body)
    request = ExportLogsServiceRequest()
    request.ParseFromString(arrival.body)
    (resource_logs,) = request.resource_logs
    (scope_logs,) = resource_logs.scope_logs
    assert scope_logs.scope.name == "e2e.sdk.logs"
    assert len(scope_logs.log_records) == 2
    for attempt, record in enumerate(scope_logs.log_records):
        assert record.body.string_value == SCRUBBED_MESSAGE
        assert (record.severity_text, record.severity_number) == ("ERROR", 17)
        assert attribute_dict(record.attributes) == {
            "user_id": HASHED_USER_ID,
            "client.address": "[ip]",
            "attempt": attempt,
        }
