"""OTLP/HTTP export requests (logs, traces, metrics), JSON and protobuf.

Both wire forms become the same *friendly document*: the request in OTLP JSON form
(lowerCamelCase keys, enums as integers, 64-bit integers as the input had them) with

* every ``attributes`` / ``filteredAttributes`` / ``metadata`` list (resource, scope,
  span, span event, link, log record, data point, exemplar, metric) turned into a dict
  and every log ``body`` into its Python value (:mod:`proxy.codecs.otlp_values`);
* ``traceId`` / ``spanId`` / ``parentSpanId`` as hex strings (as OTLP JSON writes them);
* each metric's data (``gauge``, ``sum``, ``histogram``, ``exponentialHistogram``,
  ``summary``) lifted into the metric with ``"dataType": "<that key>"``, so data points
  of every kind live at one path.

Events paths: ``resourceSpans[*].scopeSpans[*].spans[*]``,
``resourceLogs[*].scopeLogs[*].logRecords[*]`` and
``resourceMetrics[*].scopeMetrics[*].metrics[*].dataPoints[*]``. When events were
dropped, metrics, scopes and resources left empty are removed too.

The scrubbed document is converted back exactly: protobuf re-serialized, JSON written in
OTLP JSON form. Whatever no rule touched round-trips unchanged.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from filters.outcome import PayloadError
from proxy.codecs.base import CodecContext, CodecResult
from proxy.codecs.json_parse import parse_json
from proxy.codecs.otlp_values import (
    any_value_to_python,
    attributes_to_dict,
    dict_to_attributes,
    python_to_any_value,
)

CODEC = "otlp"

ATTRIBUTE_KEYS = frozenset({"attributes", "filteredAttributes", "metadata"})
BODY_KEY = "body"
ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
METRIC_DATA_KEYS: tuple[str, ...] = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
DATA_TYPE_KEY = "dataType"

_SIGNAL_PATH = re.compile(r"/v1/(logs|traces|metrics)/?$")


@dataclass(frozen=True, slots=True)
class Signal:
    """One OTLP signal: its request message and the three levels of its document."""

    name: str
    request_type: type[Message]
    resources: str
    scopes: str
    leaves: str
    events: str


LOGS = Signal(
    "logs",
    ExportLogsServiceRequest,
    "resourceLogs",
    "scopeLogs",
    "logRecords",
    "resourceLogs[*].scopeLogs[*].logRecords[*]",
)
TRACES = Signal(
    "traces",
    ExportTraceServiceRequest,
    "resourceSpans",
    "scopeSpans",
    "spans",
    "resourceSpans[*].scopeSpans[*].spans[*]",
)
METRICS = Signal(
    "metrics",
    ExportMetricsServiceRequest,
    "resourceMetrics",
    "scopeMetrics",
    "metrics",
    "resourceMetrics[*].scopeMetrics[*].metrics[*].dataPoints[*]",
)
SIGNALS: dict[str, Signal] = {signal.name: signal for signal in (LOGS, TRACES, METRICS)}


def scrub_otlp_json(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub an OTLP/JSON request; the signal comes from the path (``/v1/logs`` ...) or,
    failing that, from the top-level key. Raises ``PayloadError`` on malformed input."""
    document = parse_json(body, CODEC)
    signal = signal_for(ctx.path, document)
    friendly = to_friendly(document, signal, ids_are_base64=False)
    return _scrub(friendly, signal, ctx, protobuf=False)


def scrub_otlp_protobuf(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub an OTLP/protobuf request; the signal must come from the path."""
    signal = signal_for(ctx.path, None)
    message = parse_protobuf(body, signal)
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    friendly = to_friendly(document, signal, ids_are_base64=True)
    return _scrub(friendly, signal, ctx, protobuf=True)


def signal_for(path: str, document: Any) -> Signal:
    """The signal named by the path, else the one whose top-level key ``document`` has."""
    match = _SIGNAL_PATH.search(path.split("?", 1)[0])
    if match:
        return SIGNALS[match.group(1)]
    if isinstance(document, dict):
        for signal in SIGNALS.values():
            if signal.resources in document:
                return signal
    raise PayloadError(CODEC, "cannot tell which OTLP signal the request carries")


def parse_protobuf(body: bytes, signal: Signal) -> Message:
    """Parse an ``Export*ServiceRequest``; raises ``PayloadError`` if it does not parse."""
    message = signal.request_type()
    try:
        message.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError):
        raise PayloadError(CODEC, f"body is not a valid {signal.name} export request") from None
    return message


def to_friendly(document: Any, signal: Signal, *, ids_are_base64: bool) -> dict[str, Any]:
    """OTLP JSON-form request -> friendly document (see the module docstring)."""
    _check_skeleton(document, signal)
    friendly = _convert(document, _friendly_node(ids_are_base64))
    if signal is METRICS:
        for metric in _leaves(friendly, signal):
            _lift_metric_data(metric)
    return friendly


def from_friendly(friendly: Any, signal: Signal, *, ids_to_base64: bool) -> dict[str, Any]:
    """Friendly document -> OTLP JSON-form request (the inverse of ``to_friendly``)."""
    if not isinstance(friendly, dict):
        raise PayloadError(CODEC, "scrubbed document is not an object")
    if signal is METRICS:
        for metric in _leaves(friendly, signal):
            _lower_metric_data(metric)
    return _convert(friendly, _otlp_node(ids_to_base64))


def _scrub(
    friendly: dict[str, Any], signal: Signal, ctx: CodecContext, *, protobuf: bool
) -> CodecResult:
    result = ctx.scrub(friendly, signal.events)
    outcome = result.outcome
    if outcome.all_events_dropped:
        return CodecResult(b"", outcome, empty=True)
    scrubbed = result.value
    if outcome.events_out < outcome.events_in:
        _prune_empty(scrubbed, signal)
    otlp = from_friendly(scrubbed, signal, ids_to_base64=protobuf)
    body = _write_protobuf(otlp, signal) if protobuf else orjson.dumps(otlp)
    return CodecResult(body, outcome)


def _write_protobuf(otlp: dict[str, Any], signal: Signal) -> bytes:
    message = signal.request_type()
    try:
        json_format.ParseDict(otlp, message)
    except (json_format.ParseError, ValueError, TypeError):
        raise PayloadError(CODEC, "scrubbed document no longer fits the OTLP schema") from None
    return message.SerializeToString()


Converter = Callable[[str, Any], tuple[bool, Any]]
"""``(key, value) -> (handled, new value)`` for the special keys of one direction."""


def _convert(node: Any, special: Converter) -> Any:
    """Copy the OTLP structure, letting ``special`` convert the keys it knows (whose
    values are not descended into)."""
    if isinstance(node, list):
        return [_convert(item, special) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        handled, new_value = special(key, value)
        converted[key] = new_value if handled else _convert(value, special)
    return converted


def _node_converter(
    attributes: Callable[[Any], Any], body: Callable[[Any], Any], ids: Callable[[Any], Any] | None
) -> Converter:
    """A converter for one direction: attribute lists, log bodies and (optionally) ids."""

    def convert(key: str, value: Any) -> tuple[bool, Any]:
        if value is None:
            return False, value
        if key in ATTRIBUTE_KEYS:
            return True, attributes(value)
        if key == BODY_KEY:
            return True, body(value)
        if ids is not None and key in ID_KEYS:
            return True, ids(value)
        return False, value

    return convert


def _friendly_node(ids_are_base64: bool) -> Converter:
    return _node_converter(
        attributes_to_dict, any_value_to_python, _base64_to_hex if ids_are_base64 else None
    )


def _otlp_node(ids_to_base64: bool) -> Converter:
    return _node_converter(
        dict_to_attributes, python_to_any_value, _hex_to_base64 if ids_to_base64 else None
    )


def _base64_to_hex(value: Any) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise PayloadError(CODEC, "id is not base64") from None
    # Ids pass the engine as opaque hex: only the sizes OTLP defines (16-byte trace ids,
    # 8-byte span ids) may, so they cannot carry longer text past the detectors.
    if len(raw) not in _ID_SIZES:
        raise PayloadError(CODEC, "trace or span id is neither 8 nor 16 bytes")
    return raw.hex()


_ID_SIZES = frozenset({8, 16})


def _hex_to_base64(value: Any) -> str:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None:
        raise PayloadError(CODEC, "scrubbed trace or span id is not hex")
    return base64.b64encode(raw).decode("ascii")


def _check_skeleton(document: Any, signal: Signal) -> None:
    """Resources, scopes and leaves must be lists of objects, so events paths resolve."""
    if not isinstance(document, dict):
        raise PayloadError(CODEC, "request is not an object")
    for resource in _list_of_objects(document, signal.resources):
        for scope in _list_of_objects(resource, signal.scopes):
            leaves = _list_of_objects(scope, signal.leaves)
            if signal is METRICS:
                for metric in leaves:
                    _check_metric(metric)


def _check_metric(metric: dict[str, Any]) -> None:
    present = [key for key in METRIC_DATA_KEYS if metric.get(key) is not None]
    if len(present) > 1:
        raise PayloadError(CODEC, "metric has more than one kind of data")
    if present:
        data = metric[present[0]]
        if not isinstance(data, dict):
            raise PayloadError(CODEC, "metric data is not an object")
        _list_of_objects(data, "dataPoints")
    if DATA_TYPE_KEY in metric:
        raise PayloadError(CODEC, "metric has an unexpected dataType field")


def _list_of_objects(parent: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PayloadError(CODEC, f"{key} is not a list of objects")
    return value


def _leaves(document: dict[str, Any], signal: Signal) -> list[dict[str, Any]]:
    return [
        leaf
        for resource in _list_of_objects(document, signal.resources)
        for scope in _list_of_objects(resource, signal.scopes)
        for leaf in _list_of_objects(scope, signal.leaves)
    ]


def _lift_metric_data(metric: dict[str, Any]) -> None:
    for key in METRIC_DATA_KEYS:
        data = metric.pop(key, None)
        if data is not None:
            metric[DATA_TYPE_KEY] = key
            metric.update(data)
            return


def _lower_metric_data(metric: dict[str, Any]) -> None:
    data_type = metric.pop(DATA_TYPE_KEY, None)
    if data_type not in METRIC_DATA_KEYS:
        data_type = _guess_data_type(metric)
    if data_type is None:
        return
    data = {key: metric.pop(key) for key in _DATA_FIELDS if key in metric}
    metric[data_type] = data


_DATA_FIELDS = ("dataPoints", "aggregationTemporality", "isMonotonic")


def _guess_data_type(metric: dict[str, Any]) -> str | None:
    """The kind of data, when a rule removed ``dataType``: told by the points' fields."""
    points = metric.get("dataPoints")
    if not isinstance(points, list):
        return None
    fields = {key for point in points if isinstance(point, dict) for key in point}
    if "quantileValues" in fields:
        return "summary"
    if fields & {"positive", "negative", "scale", "zeroCount"}:
        return "exponentialHistogram"
    if fields & {"bucketCounts", "explicitBounds"}:
        return "histogram"
    if "aggregationTemporality" in metric or "isMonotonic" in metric:
        return "sum"
    return "gauge"


def _prune_empty(document: Any, signal: Signal) -> None:
    """Drop metrics without points, then scopes and resources left without children."""
    if not isinstance(document, dict):
        return
    resources = _list_of_objects(document, signal.resources)
    for resource in resources:
        scopes = _list_of_objects(resource, signal.scopes)
        for scope in scopes:
            if signal is METRICS:
                metrics = _list_of_objects(scope, signal.leaves)
                scope[signal.leaves] = [metric for metric in metrics if metric.get("dataPoints")]
        resource[signal.scopes] = [scope for scope in scopes if scope.get(signal.leaves)]
    document[signal.resources] = [resource for resource in resources if resource.get(signal.scopes)]
