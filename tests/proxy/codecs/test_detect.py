import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.codecs.detect import DETECTED_FORMATS, detect_format, media_type_of
from proxy.codecs.registry import FORMATS

ENVELOPE_HEAD = (
    b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"event","length":2}\n{}\n'
)
PROTOBUF_HEAD = b"\n\x8a\x01\n\x1f\n\x0cservice.name\x12\x0f\n\rcheckout"

CASES = [
    # Content-Type decides alone
    ("application/x-sentry-envelope", "/anything", b"{}", "sentry_envelope", "sentry-type"),
    ("application/x-protobuf", "/v1/traces", PROTOBUF_HEAD, "otlp_protobuf", "protobuf-traces"),
    ("application/x-protobuf", "/otel/v1/logs", PROTOBUF_HEAD, "otlp_protobuf", "prefix-logs"),
    ("application/protobuf", "/v1/metrics/", PROTOBUF_HEAD, "otlp_protobuf", "protobuf-alias"),
    ("application/x-protobuf", "/collect", PROTOBUF_HEAD, "binary", "protobuf-elsewhere"),
    ("application/x-ndjson", "/v1/batch", b'{"a":1}\n', "ndjson", "x-ndjson"),
    ("application/jsonl", "/", b'{"a":1}\n', "ndjson", "jsonl"),
    ("application/x-www-form-urlencoded", "/track", b"data=eyJ", "form", "form"),
    ("multipart/form-data; boundary=x", "/upload", b"--x\r\n", "multipart", "multipart"),
    # JSON on OTLP paths is OTLP JSON
    ("application/json", "/v1/logs", b'{"resourceLogs":[]}', "otlp_json", "otlp-json-logs"),
    ("application/json; charset=utf-8", "/v1/traces", b"{}", "otlp_json", "otlp-json-params"),
    # Sentry paths
    ("text/plain;charset=UTF-8", "/api/42/envelope/", ENVELOPE_HEAD, "sentry_envelope", "beacon"),
    ("application/json", "/api/42/envelope/", ENVELOPE_HEAD, "sentry_envelope", "env-json-type"),
    (None, "/api/42/envelope", ENVELOPE_HEAD, "sentry_envelope", "envelope-no-type"),
    ("application/json", "/api/42/store/", b'{"message":"x"}', "sentry_store", "store-json"),
    ("application/octet-stream", "/api/7/store/", b"eJyrVg==", "sentry_store", "store-base64"),
    ("application/json", "/api/7/envelope/?sentry_key=abc", ENVELOPE_HEAD, "sentry_envelope", "qs"),
    # generic JSON
    ("application/json", "/v1/batch", b'{"batch":[]}', "json", "json"),
    ("application/vnd.api+json", "/x", b"{}", "json", "plus-json"),
    ("text/json", "/x", b"[1]", "json", "text-json"),
    ("APPLICATION/JSON", "/x", b"{}", "json", "upper-case"),
    # text/plain carrying JSON (navigator.sendBeacon)
    ("text/plain;charset=UTF-8", "/collect", b'{"e":"pv"}', "json", "beacon-json"),
    ("text/plain", "/collect", b'  [{"e":"pv"}]', "json", "beacon-array"),
    ("text/plain", "/collect", b'\xef\xbb\xbf{"e":1}', "json", "beacon-bom"),
    ("text/plain", "/collect", b'{"a":1}\n{"a":2}\n', "ndjson", "beacon-ndjson"),
    ("text/plain", "/collect", b"hello world", "text", "plain-text"),
    ("text/plain", "/collect", b"caf\xc3\xa9 ol\xc3", "text", "text-cut-utf8"),
    ("text/plain", "/collect", b"\x00\x01\x02\xff", "binary", "text-type-binary-body"),
    # sniffing when nothing is declared
    (None, "/collect", b'{"e":"pv"}', "json", "sniff-json"),
    (None, "/collect", b'{\n  "a": {\n  }\n}\n', "json", "sniff-pretty-json"),
    (None, "/collect", b'[\n {"a":1},\n {"a":2}\n]', "json", "sniff-pretty-array"),
    (None, "/collect", b'{"a":1}\r\n{"a":2}', "ndjson", "sniff-ndjson-crlf"),
    (None, "/collect", ENVELOPE_HEAD, "sentry_envelope", "sniff-envelope"),
    (
        None,
        "/collect",
        b'{"type":"track"}\n{"type":"track","event":"x"}\n',
        "ndjson",
        "ndjson-types",
    ),
    ("application/octet-stream", "/collect", b"\x89PNG\r\n\x1a\n\x00", "binary", "sniff-binary"),
    (None, "/collect", b"", "text", "empty"),
    (None, "/collect", b"e=pv&url=x", "text", "sniff-text"),
]


@pytest.mark.parametrize(
    ("content_type", "path", "head", "expected"),
    [pytest.param(*case[:4], id=case[4]) for case in CASES],
)
def test_detect_format(content_type, path, head, expected):
    assert detect_format(content_type, path, head) == expected


def test_every_detected_format_has_a_codec():
    assert set(DETECTED_FORMATS) == set(FORMATS)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, ""),
        ("", ""),
        ("Application/JSON; charset=utf-8", "application/json"),
        (" text/plain ", "text/plain"),
    ],
)
def test_media_type_of(content_type, expected):
    assert media_type_of(content_type) == expected


@settings(max_examples=300, deadline=None)
@given(
    content_type=st.one_of(st.none(), st.text(max_size=60)),
    path=st.text(max_size=60),
    head=st.binary(max_size=300),
)
def test_never_raises(content_type, path, head):
    assert detect_format(content_type, path, head) in DETECTED_FORMATS
