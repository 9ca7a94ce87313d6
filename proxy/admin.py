"""The admin listener: ``/metrics``, ``/-/healthy``, ``/-/ready``, ``POST /-/reload`` and
``GET /-/config``, for one process (:class:`ProcessAdmin`) or, with workers, for the
supervisor (:class:`proxy.supervisor.SupervisorAdmin`) — same paths, same answers."""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from proxy import metrics
from proxy.settings import LoadedSettings
from proxy.state import ReloadResult, SettingsHolder


def json_response(http_status: int, /, **fields: object) -> web.Response:
    return web.Response(
        status=http_status, body=orjson.dumps(fields), content_type="application/json"
    )


class AdminEndpoints:
    """The endpoints; a subclass says where settings, readiness and reloads come from.
    Reload and config need the admin token when one is configured; metrics, health and
    readiness never do (probes and Prometheus reach them)."""

    registry: CollectorRegistry = metrics.REGISTRY

    def settings(self) -> LoadedSettings:
        raise NotImplementedError

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """Status code and JSON fields of ``/-/ready``."""
        raise NotImplementedError

    async def reload_settings(self) -> ReloadResult:
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/-/healthy", self.healthy)
        app.router.add_get("/-/ready", self.ready)
        app.router.add_post("/-/reload", self.reload)
        app.router.add_get("/-/config", self.config)
        return app

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthy(self, _request: web.Request) -> web.Response:
        return json_response(200, status="healthy")

    async def ready(self, _request: web.Request) -> web.Response:
        status, fields = self.readiness()
        return json_response(status, **fields)

    async def reload(self, request: web.Request) -> web.Response:
        if not authorized(request, self.settings().admin.token):
            return json_response(401, error="admin token required")
        result = await self.reload_settings()
        if not result.ok:
            return json_response(400, status="failed", errors=list(result.problems))
        return json_response(200, status="reloaded", changed=result.changed)

    async def config(self, request: web.Request) -> web.Response:
        """The effective settings (defaults filled in, ${VAR}s expanded), secrets masked."""
        settings = self.settings()
        if not authorized(request, settings.admin.token):
            return json_response(401, error="admin token required")
        return json_response(
            200, file=settings.file, sha256=settings.digest, settings=mask_secrets(settings.raw)
        )


class ProcessAdmin(AdminEndpoints):
    """The admin endpoints of a single-process scrubgate."""

    def __init__(self, holder: SettingsHolder, ready: asyncio.Event) -> None:
        self._holder = holder
        self._ready = ready

    def settings(self) -> LoadedSettings:
        return self._holder.current.settings

    def readiness(self) -> tuple[int, dict[str, Any]]:
        if not self._ready.is_set():
            return 503, {"status": "starting"}
        return 200, {"status": "ready"}

    async def reload_settings(self) -> ReloadResult:
        return self._holder.reload()


_SECRET_KEY = re.compile(r"(?i)(token|secret|password|passwd|credential|api_?key)$")


def mask_secrets(value: Any) -> Any:
    """Settings as shown by ``/-/config``: values under secret-looking keys and URL
    userinfo become ``***``. Secrets themselves never live in the settings (keys and
    tokens are read from files or the environment), but ${VAR} expansion could put one
    in any scalar."""
    if isinstance(value, dict):
        return {
            key: "***" if _SECRET_KEY.search(key) and isinstance(item, str) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str) and "@" in value and "://" in value:
        return _URL_USERINFO.sub(r"\1***@", value)
    return value


_URL_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")


def authorized(request: web.Request, token: str | None) -> bool:
    if token is None:
        return True
    return hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}")
