"""Shared fixtures: scanners are compiled once per session and per backend.

``redact_text(text, *names)`` and ``redact_json(value, *names)`` run the named built-in
detectors (every default-enabled one when no name is given) over a text buffer or over
the canonical JSON of ``value``, on each available backend (the ``backend`` fixture is
parametrized, so every table test runs on hyperscan and on RE2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from filters.detectors.base import BufferKind, Detector
from filters.detectors.registry import DEFAULT_ENABLED, builtin_detectors
from filters.detectors.scanner import Scanner, hyperscan_available

BACKENDS = ("hyperscan", "re2") if hyperscan_available() else ("re2",)


class ScannerCache:
    """Builds each (detector names, backend) scanner once."""

    def __init__(self) -> None:
        self.detectors: dict[str, Detector] = builtin_detectors()
        self._scanners: dict[tuple[tuple[str, ...], str], Scanner] = {}

    def get(self, names: tuple[str, ...], backend: str) -> Scanner:
        names = names or DEFAULT_ENABLED
        key = (names, backend)
        if key not in self._scanners:
            detectors = [self.detectors[name] for name in names]
            self._scanners[key] = Scanner(detectors, backend=backend)  # type: ignore[arg-type]
        return self._scanners[key]


@pytest.fixture(scope="session")
def scanners() -> ScannerCache:
    return ScannerCache()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def redact_text(scanners: ScannerCache, backend: str) -> Callable[..., str]:
    def run(text: str, *names: str) -> str:
        output, _ = scanners.get(names, backend).redact(text.encode(), BufferKind.TEXT)
        return output.decode()

    return run


@pytest.fixture
def redact_json(scanners: ScannerCache, backend: str) -> Callable[..., Any]:
    def run(value: Any, *names: str) -> Any:
        output, _ = scanners.get(names, backend).redact(orjson.dumps(value), BufferKind.JSON)
        return orjson.loads(output)

    return run
