"""Every metric scrubgate exports, declared once, with help text and bounded labels.

Label values come only from the settings (route, category, rule ids, detector names) or
from fixed sets (verdicts, status classes) — never from payloads.

With several worker processes (``workers`` > 1) every worker writes its values to files in
the supervisor's private ``PROMETHEUS_MULTIPROC_DIR`` and the supervisor's ``/metrics``
merges them: counters and histograms are summed (an exited worker's counts are kept, see
``supervisor.retire_worker_metrics``), and each gauge says how in its ``multiprocess_mode``
(live workers only: an exited worker's gauges are gone with it). The
:data:`INSTANCE_METRICS` describe the instance as a whole and are exported by the
supervisor alone, which validates and coordinates every reload.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from filters.detectors.scanner import hyperscan_available
from proxy.build import engine_build

REGISTRY = CollectorRegistry(auto_describe=True)

_SIZE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

REQUESTS = Counter(
    "scrubgate_requests_total",
    "Requests handled, by route, category and verdict "
    "(forwarded, scrubbed, spooled, dropped, blocked, rejected, failed).",
    ["route", "category", "verdict"],
    registry=REGISTRY,
)
UNROUTED = Counter(
    "scrubgate_unrouted_requests_total",
    "Requests no route matched (answered 404, or 403 for a forward-proxy request for a "
    "host no route names; never relayed).",
    ["listener"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "scrubgate_events_total",
    "Events seen in scrubbed requests, by route and whether they were kept or dropped.",
    ["route", "verdict"],
    registry=REGISTRY,
)
RULE_HITS = Counter(
    "scrubgate_rule_hits_total",
    "Values changed or removed, by route and rule id.",
    ["route", "rule"],
    registry=REGISTRY,
)
DETECTOR_HITS = Counter(
    "scrubgate_detector_hits_total",
    "Detector findings redacted, by route and detector.",
    ["route", "detector"],
    registry=REGISTRY,
)
PAYLOAD_ERRORS = Counter(
    "scrubgate_payload_errors_total",
    "Bodies that could not be decoded or exceeded a limit, by route, codec and reason class.",
    ["route", "codec", "reason"],
    registry=REGISTRY,
)
RECEIVED_BYTES = Counter(
    "scrubgate_received_bytes_total",
    "Request body bytes received from clients (as sent, before decompression).",
    ["route"],
    registry=REGISTRY,
)
SENT_BYTES = Counter(
    "scrubgate_sent_bytes_total",
    "Request body bytes sent upstream (as sent, after re-encoding).",
    ["route"],
    registry=REGISTRY,
)
UPSTREAM_RESPONSES = Counter(
    "scrubgate_upstream_responses_total",
    "Upstream answers by route and status class (2xx, 3xx, 4xx, 5xx, error, timeout).",
    ["route", "status_class"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "scrubgate_request_duration_seconds",
    "Time from request received to response sent, by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
ENGINE_SECONDS = Histogram(
    "scrubgate_engine_duration_seconds",
    "Time spent decoding, scrubbing and re-encoding a body, by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_SECONDS = Histogram(
    "scrubgate_upstream_duration_seconds",
    "Time waiting for the upstream's response headers, by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BODY_BYTES = Histogram(
    "scrubgate_request_body_bytes",
    "Sizes of request bodies as received, by route.",
    ["route"],
    buckets=_SIZE_BUCKETS,
    registry=REGISTRY,
)
CONNECT_REQUESTS = Counter(
    "scrubgate_connect_requests_total",
    "CONNECT requests, by listener, allowlisted destination (host:port as in the settings, "
    "'-' when none matched) and outcome (tunnelled, intercepted, refused, failed, overloaded).",
    ["listener", "destination", "outcome"],
    registry=REGISTRY,
)
TUNNEL_BYTES = Counter(
    "scrubgate_tunnel_bytes_total",
    "Bytes relayed uninspected through CONNECT tunnels, by allowlisted destination and "
    "direction (outbound: client to destination, inbound: destination to client).",
    ["destination", "direction"],
    registry=REGISTRY,
)
OPEN_TUNNELS = Gauge(
    "scrubgate_open_tunnels",
    "CONNECT tunnels open right now (bounded by forward_proxy.max_tunnels).",
    registry=REGISTRY,
    # Summed over the live workers: a dead worker's tunnels are closed.
    multiprocess_mode="livesum",
)
IN_FLIGHT = Gauge(
    "scrubgate_in_flight_requests",
    "Requests being handled right now (with several workers: the sum of each worker's "
    "count, sampled every second).",
    registry=REGISTRY,
    # Summed over the live workers; a dead worker's requests are no longer in flight.
    multiprocess_mode="livesum",
)
CLIENT_DISCONNECTS = Counter(
    "scrubgate_client_disconnects_total",
    "Clients that closed the connection while an upstream's answer was streamed to them.",
    registry=REGISTRY,
)
OVERLOAD_REJECTIONS = Counter(
    "scrubgate_overload_rejections_total",
    "Requests answered 503 before any processing, by route and the limit that was full "
    "(in_flight, buffered_bytes, spool_full).",
    ["route", "reason"],
    registry=REGISTRY,
)
SPOOL_REQUESTS = Gauge(
    "scrubgate_spool_requests",
    "Scrubbed requests waiting in the spool, by route.",
    ["route"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
SPOOL_BYTES = Gauge(
    "scrubgate_spool_bytes",
    "Bytes of spooled requests on disk, by route.",
    ["route"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
SPOOL_OLDEST_AGE = Gauge(
    "scrubgate_spool_oldest_age_seconds",
    "Age of the oldest spooled request (0 when the spool is empty).",
    # The live workers' oldest: an exited worker's last value would never age again.
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
SPOOL_ENQUEUED = Counter(
    "scrubgate_spool_enqueued_total",
    "Scrubbed requests written to the spool, by route.",
    ["route"],
    registry=REGISTRY,
)
SPOOL_RETRIES = Counter(
    "scrubgate_spool_retries_total",
    "Delivery attempts of spooled requests that failed and will be retried, by route.",
    ["route"],
    registry=REGISTRY,
)
SPOOL_DELIVERIES = Counter(
    "scrubgate_spool_deliveries_total",
    "Spooled requests the upstream answered, by route and result (delivered: 1xx-3xx; "
    "rejected: a 4xx other than 408/429, never retried).",
    ["route", "result"],
    registry=REGISTRY,
)
SPOOL_DROPS = Counter(
    "scrubgate_spool_drops_total",
    "Requests that could not be spooled or were removed undelivered, by route and reason "
    "(full, evicted, too_large, write_error, expired, corrupt, route_removed).",
    ["route", "reason"],
    registry=REGISTRY,
)
CONFIG_RELOAD_SUCCESS = Gauge(
    "scrubgate_config_last_reload_successful",
    "1 if the last settings load or reload succeeded, else 0.",
    registry=REGISTRY,
    # An instance metric (the supervisor's); merged, one live process failing means 0.
    multiprocess_mode="livemin",
)
CONFIG_RELOAD_SECONDS = Gauge(
    "scrubgate_config_last_reload_success_timestamp_seconds",
    "Unix time of the last successful settings load or reload.",
    registry=REGISTRY,
    # An instance metric; merged, the oldest success is the one every process has had.
    multiprocess_mode="livemin",
)
CONFIG_RELOADS = Counter(
    "scrubgate_config_reloads_total",
    "Settings reload attempts, by result (success, failure).",
    ["result"],
    registry=REGISTRY,
)
# Info metrics are gauges of value 1 whose labels carry the information: prometheus_client's
# Info type does not work with several processes.
CONFIG_INFO = Gauge(
    "scrubgate_config_info",
    "Always 1; the sha256 label is the SHA-256 of the settings file currently in force.",
    ["sha256"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
BUILD_INFO = Gauge(
    "scrubgate_build_info",
    "Always 1; the labels give the version of scrubgate, of Python, the scanning backend and "
    "whether the engine runs compiled (mypyc) or as plain Python.",
    ["version", "python", "scanner", "engine"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
WORKERS = Gauge(
    "scrubgate_workers",
    "Worker processes serving the listeners and ready (1 without a supervisor).",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
WORKERS.set(1)
WORKER_RESTARTS = Counter(
    "scrubgate_worker_restarts_total",
    "Worker processes started again after they exited unexpectedly, by worker index.",
    ["worker"],
    registry=REGISTRY,
)

INSTANCE_METRICS = (
    CONFIG_RELOAD_SUCCESS,
    CONFIG_RELOAD_SECONDS,
    CONFIG_RELOADS,
    CONFIG_INFO,
    BUILD_INFO,
    WORKERS,
    WORKER_RESTARTS,
)
"""Metrics of the whole instance: with workers, the supervisor's values are exported and
the workers' copies are left out."""


def record_build_info() -> None:
    try:
        version = metadata.version("scrubgate")
    except metadata.PackageNotFoundError:
        version = "unknown"
    scanner = "hyperscan" if hyperscan_available() else "re2"
    BUILD_INFO.labels(
        version=version, python=platform.python_version(), scanner=scanner, engine=engine_build()
    ).set(1)


def record_settings_in_force(digest: str) -> None:
    """A settings file was loaded, at start or by a reload: it is the one in force now."""
    CONFIG_RELOAD_SUCCESS.set(1)
    CONFIG_RELOAD_SECONDS.set(time.time())
    for family in CONFIG_INFO.collect():
        for sample in family.samples:
            old = sample.labels["sha256"]
            if old == digest:
                continue
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
                # A series written to a worker's metrics file cannot be removed.
                CONFIG_INFO.labels(sha256=old).set(0)
            else:
                CONFIG_INFO.remove(old)
    CONFIG_INFO.labels(sha256=digest).set(1)


def record_reload(digest: str | None) -> None:
    """The outcome of one reload: the digest of the settings now in force, or ``None``
    when the reload failed and the previous settings stay."""
    CONFIG_RELOADS.labels(result="failure" if digest is None else "success").inc()
    if digest is None:
        CONFIG_RELOAD_SUCCESS.set(0)
    else:
        record_settings_in_force(digest)


@functools.lru_cache(maxsize=8192)
def labelled(metric: MetricWrapperBase, *values: str) -> Any:
    """``metric.labels(*values)`` (values in the order of its label names), looked up once:
    label values come from the settings and fixed sets, so there are few, and the request
    path then skips prometheus_client's validation and locking of every lookup."""
    return metric.labels(*values)


def status_class(status: int) -> str:
    return _STATUS_CLASSES[status // 100] if 0 <= status < 1000 else f"{status // 100}xx"


_STATUS_CLASSES = tuple(f"{digit}xx" for digit in range(10))
