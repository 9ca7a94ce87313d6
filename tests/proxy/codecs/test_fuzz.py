"""Every codec against hostile bodies, with the real default policy of config.example.yaml.

The property, for every format and every body: ``scrub_body`` (and the whole
``scrub_request`` pipeline, content encodings included) either returns a body or raises
``PayloadError`` / ``LimitExceeded`` — never any other exception — and a returned body
holds none of the canaries planted in the input, read plainly or after decoding the output
with independent decoders (JSON escapes, percent-encoding, base64 of JSON, compression,
protobuf).

Bodies are valid fixtures carrying the canaries, mutated (bit flips, truncation, splicing
with other fixtures, inserted hostile tokens), sent under their own format and under every
other one. Example counts are modest so the module runs in seconds; for a deeper search
run it with ``SCRUBGATE_FUZZ_EXAMPLES=2000``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import email.parser
import email.policy
import gzip
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import brotli
import orjson
import pytest
import zstandard
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from filters.outcome import LimitExceeded, PayloadError
from proxy.codecs import detect
from proxy.codecs.base import CodecContext, CodecLimits, CodecResult
from proxy.codecs.registry import FORMATS, scrub_body
from proxy.pipeline import scrub_request
from proxy.settings import load_settings
from tests.e2e.payloads import decode_layers

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "codecs"
EXAMPLE = load_settings(
    ROOT / "config.example.yaml", {"SCRUBGATE_HASH_KEY": "fuzz-hash-key-0123456789abcdef"}
)
ROUTE = EXAMPLE.route("analytics")
assert ROUTE is not None and ROUTE.plan is not None and ROUTE.attachments == "drop"
PLAN = ROUTE.plan
LIMITS = CodecLimits(
    max_body_bytes=2 * 2**20, max_decoded_bytes=4 * 2**20, max_ratio=100, max_parts=64
)
FUZZ = settings(
    max_examples=int(os.environ.get("SCRUBGATE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

EMAIL = "jane.doe@example.com"
CARD = "4111111111111111"
EVENT = {
    "userId": "u-1",
    "event": "Signed Up",
    "properties": {"note": f"reach me at {EMAIL}", "card": CARD, "n": [1, 2.5, None, True]},
    "context": {"ip": "203.0.113.9", "page": {"url": f"https://a.example/?email={EMAIL}"}},
}
EVENT_JSON = orjson.dumps(EVENT)


def _envelope() -> bytes:
    event = EVENT_JSON
    statsd = f"signup.{EMAIL}:1|c".encode()
    return b"\n".join(
        [
            orjson.dumps({"event_id": "0" * 32, "trace": {"user_id": EMAIL}}),
            orjson.dumps({"type": "event", "length": len(event)}),
            event,
            orjson.dumps({"type": "statsd", "length": len(statsd), "note": EMAIL, CARD: 1}),
            statsd,
            orjson.dumps({"type": "attachment", "length": 5, "filename": f"{EMAIL}.txt"}),
            CARD[:5].encode(),
            b"",
        ]
    )


def _otlp_logs() -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "user", "value": {"stringValue": EMAIL}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "body": {"stringValue": f"card {CARD}"},
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "7"}},
                                    {"key": "d", "value": {"doubleValue": "NaN"}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }


def _otlp_traces_protobuf() -> bytes:
    request = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": base64.b64encode(bytes(range(16))).decode(),
                                "spanId": base64.b64encode(bytes(range(8))).decode(),
                                "name": f"GET /users/{EMAIL}",
                                "attributes": [
                                    {"key": "card", "value": {"stringValue": CARD}},
                                    {"key": EMAIL, "value": {"boolValue": True}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    return json_format.ParseDict(request, ExportTraceServiceRequest()).SerializeToString()


def _form() -> bytes:
    return (
        b"data="
        + base64.b64encode(orjson.dumps([EVENT, EVENT]))
        + b"&cx="
        + base64.urlsafe_b64encode(EVENT_JSON).rstrip(b"=")
        + b"&email=jane.doe%40example.com&card="
        + CARD.encode()
        + b"&json=%7B%22m%22%3A%20%22"
        + EMAIL.encode()
        + b"%22%7D&flag&a=1&a=2"
    )


BOUNDARY = "XyZfuzz"


def _multipart() -> bytes:
    parts = [
        ('name="event"', EVENT_JSON),
        ('name="email"', EMAIL.encode()),
        ('name="b64"', base64.b64encode(EVENT_JSON)),
        (f'name="note"\r\nX-Note: {EMAIL}\r\nContent-Type: text/plain; x="{CARD}"', b"hi"),
        (f'name="file"; filename="{EMAIL}.dmp"', b"MDMP\x00\x01" + CARD.encode()),
    ]
    chunks = [b"preamble " + EMAIL.encode()]
    for disposition, content in parts:
        header = f"Content-Disposition: form-data; {disposition}".encode()
        chunks.append(b"--" + BOUNDARY.encode() + b"\r\n" + header + b"\r\n\r\n" + content)
    return b"\r\n".join(chunks) + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"


# format -> (Content-Type, request path, seed bodies)
SEEDS: dict[str, tuple[str, str, tuple[bytes, ...]]] = {
    detect.JSON: (
        "application/json",
        "/v1/batch",
        (
            orjson.dumps({"batch": [EVENT, EVENT], "sentAt": "2026-01-01T00:00:00Z"}),
            EVENT_JSON,
            (FIXTURES / "json" / "segment_batch.json").read_bytes(),
        ),
    ),
    detect.NDJSON: (
        "application/x-ndjson",
        "/v1/batch",
        (EVENT_JSON + b"\n" + EVENT_JSON + b"\n",),
    ),
    detect.FORM: ("application/x-www-form-urlencoded", "/collect", (_form(),)),
    detect.MULTIPART: (
        f"multipart/form-data; boundary={BOUNDARY}",
        "/collect",
        (_multipart(),),
    ),
    detect.SENTRY_ENVELOPE: (
        "application/x-sentry-envelope",
        "/api/1/envelope/",
        (_envelope(), (FIXTURES / "sentry" / "sdk_event.envelope").read_bytes()),
    ),
    detect.SENTRY_STORE: (
        "application/json",
        "/api/1/store/",
        (EVENT_JSON, base64.b64encode(zlib.compress(EVENT_JSON))),
    ),
    detect.OTLP_JSON: ("application/json", "/v1/logs", (orjson.dumps(_otlp_logs()),)),
    detect.OTLP_PROTOBUF: ("application/x-protobuf", "/v1/traces", (_otlp_traces_protobuf(),)),
    detect.TEXT: ("text/plain", "/logs", (f"user {EMAIL} paid with {CARD}\nnext line".encode(),)),
    detect.BINARY: ("application/octet-stream", "/blob", (b"\x00\x01 " + CARD.encode(),)),
}
ALL_SEEDS: tuple[bytes, ...] = tuple(seed for _, _, seeds in SEEDS.values() for seed in seeds)

HOSTILE_TOKENS: tuple[bytes, ...] = (
    b'"',
    b"\\",
    b"\\ud800",
    b'"\\udc00\\ud800"',
    b"1e400",
    b"-1e400",
    str(2**70).encode(),
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b'{"a":1,"a":"' + EMAIL.encode() + b'"}',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"&",
    b"=",
    b"%",
    b"%ff",
    b"%40",
    b"\\u0001",  # a JSON escape that ends in a digit
    b"\\n",
    b"--" + BOUNDARY.encode(),
    b"\r\n--" + BOUNDARY.encode() + b"\r\n",
    b'"length":99999',
    b'"length":-1',
    b'{"type":"event"}\n',
    b'{"type":"attachment","length":3}\n',
    b'"item_count":3',
    b"\x1f\x8b\x08",
    b"\x78\x9c",
    b"[" * 300 + b"]" * 300,
    EMAIL.encode(),
    CARD.encode(),
)


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A seed with up to four mutations: bit flips, truncation, deletion, insertion of a
    hostile token, splicing with another fixture, duplication of a slice."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        operation = draw(
            st.sampled_from(["flip", "truncate", "delete", "insert", "splice", "duplicate"])
        )
        at = draw(st.integers(0, len(data)))
        if operation == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[at:]
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif operation == "insert":
            data[at:at] = draw(st.sampled_from(HOSTILE_TOKENS))
        elif operation == "splice":
            other = draw(st.sampled_from(ALL_SEEDS))
            data[at:] = other[draw(st.integers(0, len(other))) :]
        elif operation == "duplicate":
            end = draw(st.integers(at, len(data)))
            data[at:at] = data[at:end]
    return bytes(data)


# --- the oracle: independent decoders ---------------------------------------------------

_EMAIL_TOKEN = re.compile(rf"{re.escape(EMAIL)}(?![0-9A-Za-z_-])")
# After "<digit>." the digits are a decimal fraction, which the card detector leaves alone.
_CARD_TOKEN = re.compile(rf"(?<![0-9A-Za-z])(?<![0-9]\.){CARD}(?![0-9A-Za-z])")


def readable_texts(fmt: str, output: bytes, content_type: str) -> Iterator[str]:
    """What a recipient can read out of a body of format ``fmt`` with standard decoders:
    the text (JSON escapes undone in JSON lines; percent-encoding in forms), plus the JSON
    inside base64 where the format carries it (form and multipart values; store bodies,
    zlib-compressed or not) and the strings of an OTLP protobuf message."""
    if fmt == detect.FORM:
        # A form is only ever read percent-decoded.
        yield unquote_plus(output.decode("utf-8", "replace"), errors="replace")
        for value in _form_values(output):
            yield from _base64_json_texts(value.encode("utf-8", "replace"))
        return
    yield from _plain_texts(output)
    if fmt == detect.MULTIPART:
        for content in _multipart_contents(output, content_type):
            yield from _base64_json_texts(content)
    elif fmt == detect.SENTRY_STORE:
        yield from _base64_json_texts(b"".join(output.split()), inflate=True)
    elif fmt == detect.OTLP_PROTOBUF:
        yield from _protobuf_texts(output)


def _plain_texts(data: bytes) -> Iterator[str]:
    """The bytes as text, and the JSON values among its lines with their escapes undone:
    the value as JSON text, and each of its strings as the text it stands for (control
    characters included, which JSON text writes as ``\\u0001``)."""
    yield data.decode("utf-8", "replace")
    for line in (data, *data.split(b"\n")):
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        yield json.dumps(value, ensure_ascii=False)
        yield from _json_strings(value)


def _json_strings(value: Any) -> Iterator[str]:
    """Every key and string in a parsed JSON value (iteratively: it may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _form_values(output: bytes) -> list[str]:
    pairs = parse_qsl(output.decode("utf-8", "replace"), keep_blank_values=True)
    return [value for _, value in pairs]


def _multipart_contents(output: bytes, content_type: str) -> list[bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + output
    )
    if not message.is_multipart():
        return []
    return [part.get_payload(decode=True) or b"" for part in message.iter_parts()]


def _base64_json_texts(value: bytes, *, inflate: bool = False) -> Iterator[str]:
    body = value.strip().replace(b" ", b"+").rstrip(b"=")
    padded = body + b"=" * (-len(body) % 4)
    for altchars in (None, b"-_"):
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        for layer in (raw, *(_inflations(raw) if inflate else ())):
            if _is_json(layer):
                yield from _plain_texts(layer)


def _inflations(raw: bytes) -> Iterator[bytes]:
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        try:
            yield zlib.decompressobj(wbits).decompress(raw, 2**24)
        except zlib.error:
            continue


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _protobuf_texts(output: bytes) -> Iterator[str]:
    for message_type in (ExportTraceServiceRequest, ExportLogsServiceRequest):
        message = message_type()
        try:
            message.ParseFromString(output)
        except (DecodeError, RecursionError):
            continue
        yield json_format.MessageToJson(message, ensure_ascii=False)


def leaked(fmt: str, output: bytes, content_type: str = "") -> list[str]:
    """The canaries readable in ``output``. A card glued to letters or digits is not one
    (no detector could tell it from an id), nor an e-mail whose domain runs on into more
    letters (``...@example.comXyz`` is another domain); an e-mail glued in front is."""
    found = set()
    for text in readable_texts(fmt, output, content_type):
        if _EMAIL_TOKEN.search(text):
            found.add("email")
        if _CARD_TOKEN.search(text):
            found.add("card")
    return sorted(found)


# --- the property ----------------------------------------------------------------------


def context(content_type: str, path: str) -> CodecContext:
    return CodecContext(
        scrub=PLAN.scrub,
        scrub_text=PLAN.scrub_text,
        content_type=content_type,
        path=path,
        limits=LIMITS,
    )


def assert_defined_and_clean(fmt: str, body: bytes, content_type: str, path: str) -> None:
    try:
        result = scrub_body(fmt, body, context(content_type, path))
    except PayloadError:  # LimitExceeded included
        return
    assert isinstance(result, CodecResult) and isinstance(result.body, bytes)
    found = leaked(fmt, result.body, content_type)
    assert not found, f"{fmt} forwarded a canary: {found}"


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data())
def test_mutated_fixtures_give_a_clean_body_or_a_payload_error(fmt: str, data: st.DataObject):
    content_type, path, seeds = SEEDS[fmt]
    body = data.draw(mutated(seeds), label="body")
    assert_defined_and_clean(fmt, body, content_type, path)


@FUZZ
@given(
    fmt=st.sampled_from(FORMATS),
    labelled_as=st.sampled_from(FORMATS),
    body=mutated(ALL_SEEDS),
)
def test_bodies_under_the_wrong_format_and_content_type(fmt: str, labelled_as: str, body: bytes):
    content_type, path, _ = SEEDS[labelled_as]
    assert_defined_and_clean(fmt, body, content_type, path)


def test_the_seeds_carry_the_canaries_and_come_out_clean():
    """The oracle sees the canaries in every seed, and every seed scrubs cleanly (so the
    property above is not vacuously true)."""
    for fmt, (content_type, path, seeds) in SEEDS.items():
        for seed in seeds[:1]:
            assert leaked(fmt, seed, content_type), fmt
            if fmt == detect.BINARY:
                continue
            result = scrub_body(fmt, seed, context(content_type, path))
            assert result.body and not leaked(fmt, result.body, content_type), fmt


# --- the whole pipeline: content encodings, wrong labels, nesting ----------------------

PIPELINE_LIMITS = dataclasses.replace(
    EXAMPLE.limits, max_body_bytes=2 * 2**20, max_decoded_bytes=4 * 2**20, max_parts=64
)
ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}
CONTENT_TYPES = st.one_of(
    st.sampled_from([content_type for content_type, _, _ in SEEDS.values()]),
    st.sampled_from(["", "application/json; charset=utf-16", "image/png", "multipart/form-data"]),
)


@st.composite
def encoded_requests(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A mutated body under 0-3 stacked encodings, declared truthfully, wrongly or not at
    all, and maybe mutated again after encoding."""
    body = draw(mutated(ALL_SEEDS))
    layers = draw(st.lists(st.sampled_from(sorted(ENCODERS)), max_size=3))
    for layer in layers:
        body = ENCODERS[layer](body)
    declared = draw(
        st.sampled_from(
            [", ".join(layers) or None, None, "gzip", "br, gzip", "identity", "gzip, x-zip"]
        )
    )
    if draw(st.booleans()):
        body = draw(mutated((body,)))
    return body, declared


def independently_decoded(output: bytes, content_encoding: str | None) -> bytes:
    """The body as the vendor reads it: the declared layers undone by the standard
    libraries (scrubgate re-encodes sniffed gzip/zstd bodies the same way, so those are
    undone too)."""
    try:
        output = decode_layers(output, content_encoding)
    except Exception:
        return output
    for magic, decoder in ((b"\x1f\x8b", gzip.decompress), (b"\x28\xb5\x2f\xfd", _unzstd)):
        if output.startswith(magic):
            with contextlib.suppress(Exception):
                output = decoder(output)
    return output


def _unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(data, max_output_size=2**24)


@FUZZ
@given(
    request=encoded_requests(),
    content_type=CONTENT_TYPES,
    path=st.sampled_from(sorted({path for _, path, _ in SEEDS.values()})),
)
def test_pipeline_gives_a_clean_body_or_a_payload_error(request, content_type: str, path: str):
    body, content_encoding = request
    try:
        scrubbed = scrub_request(
            ROUTE,
            PIPELINE_LIMITS,
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            path=path,
            query=f"email={EMAIL}&card={CARD}",
        )
    except PayloadError:
        return
    assert EMAIL not in unquote_plus(scrubbed.query)
    if scrubbed.body is None:
        return
    plain = independently_decoded(scrubbed.body, content_encoding)
    fmt = detect.detect_format(content_type, path, plain[:512])
    found = leaked(fmt, plain, content_type)
    assert not found, f"the pipeline forwarded a canary as {fmt}: {found}"


# --- hostile bodies, one by one ---------------------------------------------------------

HUGE_INT = str(2**70)
HOSTILE_JSON: dict[str, bytes] = {
    "lone-high-surrogate": b'{"m": "\\ud800' + EMAIL.encode() + b'"}',
    "lone-low-surrogate": b'{"m": "\\udc00", "e": "' + EMAIL.encode() + b'"}',
    "reversed-surrogates": b'["\\udc00\\ud800", "' + CARD.encode() + b'"]',
    "duplicate-keys": b'{"m": "' + EMAIL.encode() + b'", "m": 1, "userId": "a", "userId": "b"}',
    "huge-float": b'{"n": 1e400, "m": "' + EMAIL.encode() + b'"}',
    "huge-negative-float": b'{"n": -1e400}',
    "int-over-64-bit": b'{"n": ' + HUGE_INT.encode() + b', "m": "' + EMAIL.encode() + b'"}',
    "nan-token": b'{"n": NaN}',
    "infinity-token": b'{"n": Infinity, "m": -Infinity}',
    "nested-10000": b"[" * 10_000 + b"]" * 10_000,
    "nested-1000-objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "nested-300": b'{"m": "' + EMAIL.encode() + b'", "d": ' + b"[" * 300 + b"]" * 300 + b"}",
    "invalid-utf8": b'{"m": "\xff\xfe' + EMAIL.encode() + b'"}',
    "utf8-encoded-surrogate": b'{"m": "\xed\xa0\x80' + EMAIL.encode() + b'"}',
    "nul-bytes": b'{"m": "\x00' + EMAIL.encode() + b'"}',
    "control-before-card": b'{"m": "card\\u0001' + CARD.encode() + b'"}',
}


def _as_format(fmt: str, document: bytes) -> bytes:
    """A hostile JSON document wrapped the way format ``fmt`` carries JSON."""
    wrappers: dict[str, Callable[[bytes], bytes]] = {
        detect.NDJSON: lambda doc: doc + b"\n" + doc + b"\n",
        detect.FORM: lambda doc: b"data=" + base64.b64encode(doc) + b"&raw=" + doc,
        detect.MULTIPART: lambda doc: (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="d"\r\n\r\n'.encode()
            + doc
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        ),
        detect.SENTRY_ENVELOPE: lambda doc: (
            b'{}\n{"type":"event","length":' + str(len(doc)).encode() + b"}\n" + doc + b"\n"
        ),
        detect.SENTRY_STORE: lambda doc: base64.b64encode(zlib.compress(doc)),
        detect.OTLP_JSON: lambda doc: (
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":'
            b'{"values":[{"key":"d","value":{"stringValue":"x"}}]}},"attributes":'
            b'[{"key":"d","value":' + doc + b"}]}]}]}]}"
        ),
    }
    return wrappers.get(fmt, lambda doc: doc)(document)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
def test_hostile_json_gives_a_clean_body_or_a_payload_error(fmt: str, case: str):
    content_type, path, _ = SEEDS[fmt]
    assert_defined_and_clean(fmt, _as_format(fmt, HOSTILE_JSON[case]), content_type, path)


@pytest.mark.parametrize(
    ("fmt", "body"),
    [
        (detect.JSON, b"[" + b"0," * 1_100_000 + b"0]"),
        (detect.NDJSON, b"0\n" * 1_100_000),
        (detect.FORM, b"a=1&" * 70),
        (detect.SENTRY_ENVELOPE, b"{}\n" + b'{"type":"statsd","length":1}\nx\n' * 70),
    ],
    ids=[
        "json-1.1M-values",
        "ndjson-1.1M-lines",
        "form-more-fields-than-max-parts",
        "envelope-items",
    ],
)
def test_millions_of_tiny_values_stop_at_a_limit(fmt: str, body: bytes):
    content_type, path, _ = SEEDS[fmt]
    with pytest.raises(LimitExceeded):
        scrub_body(fmt, body, context(content_type, path))


@pytest.mark.parametrize(
    ("case", "length_delta"), [("overrun", 2), ("short", -1), ("negative", None)]
)
def test_envelope_length_mismatch_is_a_payload_error(case: str, length_delta: int | None):
    payload = EVENT_JSON
    length = -1 if length_delta is None else len(payload) + length_delta
    body = b"{}\n" + orjson.dumps({"type": "event", "length": length}) + b"\n" + payload + b"\n"
    with pytest.raises(PayloadError):
        scrub_body(detect.SENTRY_ENVELOPE, body, context("", "/api/1/envelope/"))
