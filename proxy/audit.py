"""The audit log: per forwarded request, which fields left the network and which rules
changed what — paths and counts, never values. JSON lines, rotated by size, mode 0600."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import orjson

from filters.outcome import Outcome


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """Audit files are readable by the service user only."""

    def _open(self):  # type: ignore[no-untyped-def]  # noqa: ANN202
        stream = super()._open()
        os.chmod(self.baseFilename, 0o600)
        return stream


class AuditLog:
    """Appends one JSON object per forwarded scrub request."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        self._logger = logging.Logger(f"scrubgate.audit.{path}")
        self._logger.propagate = False
        handler = _PrivateRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(handler)
        self._handler = handler

    def record(
        self,
        *,
        route: str,
        category: str,
        upstream: str,
        status: int,
        outcome: Outcome,
        fields: Iterable[str],
    ) -> None:
        changes = Counter(outcome.changes or [])
        entry: dict[str, Any] = {
            # From time.time(), like every other timestamp: gmtime() without an argument
            # reads time(2), once seen a second ahead of time.time() on a CI VM.
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time())),
            "route": route,
            "category": category,
            "upstream": upstream,
            "status": status,
            "events": {"in": outcome.events_in, "out": outcome.events_out},
            "fields_sent": sorted(fields),
            "changes": [
                {"rule": rule, "path": path, "count": count}
                for (rule, path), count in sorted(changes.items())
            ],
            "detector_hits": dict(sorted(outcome.detector_hits.items())),
        }
        self._logger.info(orjson.dumps(entry).decode())

    def close(self) -> None:
        self._handler.close()


def field_paths(document: Any) -> set[str]:
    """The paths of every value in a document, list positions written ``[*]``."""
    paths: set[str] = set()
    _collect(document, "", paths)
    return paths


def _collect(node: Any, path: str, paths: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _collect(value, f"{path}.{key}" if path else str(key), paths)
    elif isinstance(node, list):
        for value in node:
            _collect(value, f"{path}[*]", paths)
    else:
        paths.add(path or "$")


def audit_path(file: str, worker_index: int, supervised: bool) -> str:
    """Where one process writes the audit log: the configured file, or with workers one
    file per worker (``audit.jsonl`` → ``audit.worker-1.jsonl``), since processes that
    rotated one shared file would lose each other's records."""
    if not supervised:
        return file
    path = Path(file)
    return str(path.with_name(f"{path.stem}.worker-{worker_index}{path.suffix}"))
