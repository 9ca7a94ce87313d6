"""Logging: plain text for terminals or one JSON object per line, and the access log.

Nothing logged here or anywhere in scrubgate carries a payload value, a header value, a
query value or key material: log lines name routes, rule ids, codecs, counts and sizes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

ACCESS = logging.getLogger("scrubgate.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the worker index (when the
    process is one of several workers) and structured fields."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self._worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._worker is not None:
            entry["worker"] = self._worker
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages of third-party exceptions may quote data.
            entry["exception"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()


def configure(level: str, json_lines: bool, worker: int | None = None) -> None:
    """Log to stderr; ``worker`` (a worker process's index) marks every line it writes."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter(worker))
    else:
        origin = "%(name)s" if worker is None else f"worker {worker} %(name)s"
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {origin}: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def access_enabled() -> bool:
    """Whether access lines are written (callers skip building them otherwise)."""
    return ACCESS.isEnabledFor(logging.INFO)


def access(fields: Mapping[str, Any]) -> None:
    """One line per request: route, category, verdict, status, sizes, duration, hits."""
    if not access_enabled():
        return
    summary = " ".join(f"{key}={value}" for key, value in fields.items() if key != "rule_hits")
    ACCESS.info(summary, extra={"fields": dict(fields)})
