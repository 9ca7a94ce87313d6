"""The settings in force, swapped atomically on reload.

A request takes one snapshot (``holder.current``) when it starts and uses it to the end,
so a reload never changes the plan under a request in flight.
"""

from __future__ import annotations

import logging
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
        metrics.record_settings_in_force(self.current.settings.digest)

    def on_swap(self, callback: Callable[[Snapshot], None]) -> None:
        """Call ``callback`` with every new snapshot (e.g. to reload TLS certificates)."""
        self._listeners.append(callback)

    def reload(self) -> ReloadResult:
        """Load the settings file again; swap only if the whole file is valid."""
        try:
            settings = load_settings(self.path, self._environ)
        except SettingsError as error:
            metrics.record_reload(None)
            return ReloadResult(
                ok=False, problems=tuple(str(problem) for problem in error.problems)
            )
        changed = settings.digest != self.current.settings.digest
        snapshot = self._build(settings)
        self.current = snapshot
        metrics.record_reload(settings.digest)
        for callback in self._listeners:
            callback(snapshot)
        return ReloadResult(ok=True, changed=changed)

    @staticmethod
    def _build(settings: LoadedSettings) -> Snapshot:
        return Snapshot(settings=settings, routes=RouteTable(settings.routes))


def log_reload(log: logging.Logger, result: ReloadResult, cause: str) -> None:
    """One log line for a reload's outcome: what changed, or every problem found."""
    if result.ok:
        log.info("settings reloaded after %s (changed: %s)", cause, result.changed)
    else:
        log.error(
            "settings reload after %s failed; the previous settings stay in force:\n%s",
            cause,
            "\n".join(result.problems),
        )
