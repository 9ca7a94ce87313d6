"""Request → route. Only configured routes exist: anything else is 404, never relayed."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, unquote

from proxy.settings import Route

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _CompiledRoute:
    route: Route
    path_regex: re.Pattern[str] | None


class RouteTable:
    """Routes in settings order; the first that matches wins."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._routes = tuple(
            _CompiledRoute(route, re.compile(route.path_regex) if route.path_regex else None)
            for route in routes
        )
        self._matched: dict[tuple[str, str, str | None, str], Route | None] = {}

    def match(self, listener: str, method: str, host: str | None, path: str) -> Route | None:
        """The route for a request, or ``None``.

        ``path`` is the raw request path (no query). Paths that try to climb out of a
        prefix (``/feedback/../admin``, percent-encoded dots or slashes) never match.
        """
        # Clients send the same few requests over and over: one lookup instead of path
        # normalization and a test of every route (~2 us under load). A table lives until
        # the next reload; what clients choose is remembered only when short, and a flood
        # of distinct requests empties it rather than growing it.
        key = (listener, method, host, path)
        try:
            return self._matched[key]
        except KeyError:
            route = self._first_match(listener, method, host, path)
        if len(path) <= _REMEMBERED_LENGTH and len(host or "") <= _REMEMBERED_LENGTH:
            if len(self._matched) >= _REMEMBERED_REQUESTS:
                self._matched.clear()
            self._matched[key] = route
        return route

    def _first_match(self, listener: str, method: str, host: str | None, path: str) -> Route | None:
        clean = normalize_path(path)
        if clean is None:
            return None
        bare_host = _bare_host(host)
        for compiled in self._routes:
            route = compiled.route
            if route.listener is not None and route.listener != listener:
                continue
            if route.methods and method.upper() not in route.methods:
                continue
            if route.host is not None and route.host != bare_host:
                continue
            if not _has_prefix(clean, route.path_prefix):
                continue
            if compiled.path_regex is not None and compiled.path_regex.search(clean) is None:
                continue
            return route
        return None


_REMEMBERED_LENGTH = 256
_REMEMBERED_REQUESTS = 4096
"""Matches a table remembers: (listener, method, host, path) up to 256 characters each."""


def _cached_when_short(function: Callable[[str], T]) -> Callable[[str], T]:
    """``function`` with its results remembered for paths up to 256 characters. Telemetry
    paths repeat endlessly; a long one (client-chosen) is never cached, so the cache stays
    small whatever clients send."""
    cached = functools.lru_cache(maxsize=1024)(function)

    @functools.wraps(function)
    def call(path: str) -> T:
        return cached(path) if len(path) <= _REMEMBERED_LENGTH else function(path)

    return call


@_cached_when_short
def normalize_path(path: str) -> str | None:
    """The canonical form of a request path, or ``None`` when it is not a plain
    origin-form path (absolute URIs, ``..`` segments, encoded separators, backslashes)."""
    if not path.startswith("/") or path.startswith("//"):
        return None
    decoded = unquote(path)
    if "\\" in decoded or "\x00" in decoded or decoded != unquote(decoded):
        return None
    segments = decoded.split("/")
    if any(segment in ("..", ".") for segment in segments):
        return None
    normalized = posixpath.normpath(decoded)
    if decoded.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized


def _has_prefix(path: str, prefix: str) -> bool:
    if prefix in ("", "/"):
        return True
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def _bare_host(host: str | None) -> str | None:
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def upstream_url(route: Route, path: str, query: str) -> str:
    """Where a matched request goes: the route's upstream plus the request path."""
    clean = normalize_path(path) or "/"
    if route.strip_prefix and route.path_prefix not in ("", "/"):
        clean = clean[len(route.path_prefix.rstrip("/")) :] or "/"
    url = route.upstream + _quote_path(clean)
    return f"{url}?{query}" if query else url


@_cached_when_short
def _quote_path(path: str) -> str:
    return quote(path, safe="/:@!$&'()*+,;=-._~")
