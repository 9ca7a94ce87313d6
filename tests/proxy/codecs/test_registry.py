import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from filters.outcome import PayloadError
from proxy.codecs.base import AttachmentMode
from proxy.codecs.registry import CODECS, FORMATS, scrub_body
from tests.proxy.codecs.codec_fakes import FakeEngine, make_ctx

LOGS_PROTOBUF = ExportLogsServiceRequest(
    resource_logs=[
        ResourceLogs(
            scope_logs=[ScopeLogs(log_records=[LogRecord(body=AnyValue(string_value="x@y.io"))])]
        )
    ]
).SerializeToString()

SAMPLES = {
    "json": (b'{"a":"x@y.io"}', "application/json", "/t"),
    "ndjson": (b'{"a":"x@y.io"}\n', "application/x-ndjson", "/t"),
    "form": (b"a=x%40y.io", "application/x-www-form-urlencoded", "/t"),
    "multipart": (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx@y.io\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        "/t",
    ),
    "sentry_envelope": (
        b'{}\n{"type":"event"}\n{"a":"x@y.io"}\n',
        "text/plain",
        "/api/1/envelope/",
    ),
    "sentry_store": (b'{"a":"x@y.io"}', "application/json", "/api/1/store/"),
    "otlp_json": (
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x@y.io"}}]}]}]}',
        "application/json",
        "/v1/logs",
    ),
    "otlp_protobuf": (LOGS_PROTOBUF, "application/x-protobuf", "/v1/logs"),
    "text": (b"mail x@y.io now", "text/plain", "/t"),
}


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_dispatch_scrubs_each_format(fmt):
    body, content_type, path = SAMPLES[fmt]
    result = scrub_body(fmt, body, make_ctx(content_type=content_type, path=path))
    assert b"x@y.io" not in result.body
    assert not result.empty


def test_text_must_be_utf8():
    with pytest.raises(PayloadError):
        scrub_body("text", b"\xff\xfe", make_ctx())


def test_text_uses_scrub_text_and_is_not_an_event():
    engine = FakeEngine()
    result = scrub_body("text", b"mail x@y.io now", make_ctx(engine))
    assert result.body == b"mail [email] now"
    assert engine.text_calls == ["mail x@y.io now"]
    assert result.outcome.events_in == 0


def test_binary_fails_closed():
    with pytest.raises(PayloadError) as caught:
        scrub_body("binary", b"\x00\x01", make_ctx())
    assert caught.value.codec == "binary"


def test_unknown_format():
    with pytest.raises(PayloadError):
        scrub_body("yaml", b"a: 1", make_ctx())


def test_every_format_has_a_named_codec():
    assert set(FORMATS) == set(SAMPLES) | {"binary"}
    assert all(CODECS[name].name == name for name in FORMATS)


@settings(max_examples=400, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    body=st.binary(max_size=200),
    mode=st.sampled_from(list(AttachmentMode)),
)
def test_random_bytes_give_a_result_or_a_payload_error(fmt, body, mode):
    _, content_type, path = SAMPLES.get(fmt, (b"", "application/octet-stream", "/t"))
    with contextlib.suppress(PayloadError):
        result = scrub_body(
            fmt, body, make_ctx(content_type=content_type, path=path, attachments=mode)
        )
        assert isinstance(result.body, bytes)
