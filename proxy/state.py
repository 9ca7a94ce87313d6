"""The settings in force, swapped atomically on reload.

A request takes one snapshot (``holder.current``) when it starts and uses it to the end,
so a reload never changes the plan under a request in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxy import metrics
from proxy.routing import RouteTable
from proxy.settings import LoadedSettings, SettingsError, load_settings


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a request needs, built together and replaced together."""

    settings: LoadedSettings
    routes: RouteTable


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    problems: tuple[str, ...] = ()
    changed: bool = False


class SettingsHolder:
    """Holds the current :class:`Snapshot`; ``reload`` builds a new one or keeps the old."""

    def __init__(self, path: str, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = environ
        self._listeners: list[Callable[[Snapshot], None]] = []
        self.current = self._build(load_settings(path, environ))
        self._record_success()

    def on_swap(self, callback: Callable[[Snapshot], None]) -> None:
        """Call ``callback`` with every new snapshot (e.g. to reload TLS certificates)."""
        self._listeners.append(callback)

    def reload(self) -> ReloadResult:
        """Load the settings file again; swap only if the whole file is valid."""
        try:
            settings = load_settings(self.path, self._environ)
        except SettingsError as error:
            metrics.CONFIG_RELOADS.labels(result="failure").inc()
            metrics.CONFIG_RELOAD_SUCCESS.set(0)
            return ReloadResult(
                ok=False, problems=tuple(str(problem) for problem in error.problems)
            )
        changed = settings.digest != self.current.settings.digest
        snapshot = self._build(settings)
        self.current = snapshot
        metrics.CONFIG_RELOADS.labels(result="success").inc()
        self._record_success()
        for callback in self._listeners:
            callback(snapshot)
        return ReloadResult(ok=True, changed=changed)

    @staticmethod
    def _build(settings: LoadedSettings) -> Snapshot:
        return Snapshot(settings=settings, routes=RouteTable(settings.routes))

    def _record_success(self) -> None:
        metrics.CONFIG_RELOAD_SUCCESS.set(1)
        metrics.CONFIG_RELOAD_SECONDS.set(time.time())
        metrics.CONFIG_INFO.info({"sha256": self.current.settings.digest})
