"""The aiohttp side: proxy listeners, the admin listener, lifecycle and graceful shutdown.

The request path, in order: :meth:`ProxyHandler.handle` → ``RouteTable.match`` → category
mode → (scrub) ``decode_content`` → ``detect_format`` → codec + engine → ``encode_content``
→ :class:`~proxy.forwarding.Forwarder` → relay the upstream's answer.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import signal
import ssl
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from filters.outcome import LimitExceeded, Outcome, PayloadError
from proxy import metrics
from proxy.admin import ProcessAdmin, json_response
from proxy.admission import Admission, Reservation
from proxy.audit import AuditLog, audit_path, field_paths
from proxy.forward_proxy import ForwardProxySite, proxy_middleware, refuse_connect
from proxy.forwarding import Forwarder, UpstreamUnavailable, request_headers, response_headers
from proxy.log import access, access_enabled
from proxy.pipeline import scrub_request
from proxy.routing import upstream_url
from proxy.settings import Limits, Listener, Route
from proxy.spool import Attempt, SpooledRequest, Spooler, classify, retryable
from proxy.state import SettingsHolder, Snapshot, log_reload

log = logging.getLogger("scrubgate")


class ProxyHandler:
    """Serves one listener: every request is routed, then forwarded, scrubbed, dropped or
    blocked according to the route's effective category mode."""

    def __init__(
        self,
        holder: SettingsHolder,
        forwarder: Forwarder,
        listener: str,
        audit: AuditLog | None,
        admission: Admission | None = None,
        spooler: Spooler | None = None,
    ) -> None:
        self._holder = holder
        self._forwarder = forwarder
        self._listener = listener
        self._audit = audit
        self._admission = admission or Admission()
        self._spooler = spooler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        snapshot = self._holder.current
        path, _, query = request.raw_path.partition("?")
        route = snapshot.routes.match(self._listener, request.method, request.host, path)
        if route is None:
            metrics.UNROUTED.labels(listener=self._listener).inc()
            return json_response(404, error="no route for this request")
        if self._admission.saturated(snapshot.settings.limits):
            return _overloaded(route, "in_flight")
        started = time.perf_counter()
        self._admission.in_flight += 1
        record = _Exchange()
        token = _EXCHANGE.set(record)
        status = 500
        try:
            response = await self._dispatch(request, snapshot, route, path, query)
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            _EXCHANGE.reset(token)
            self._admission.in_flight -= 1
            metrics.labelled(metrics.REQUEST_SECONDS, route.name).observe(elapsed)
            if access_enabled():
                access(
                    {
                        "route": route.name,
                        "category": route.category,
                        "method": request.method,
                        "verdict": record.verdict,
                        "status": status,
                        "bytes_in": request.content_length or 0,
                        "bytes_out": record.bytes_out,
                        "duration_ms": round(elapsed * 1000, 2),
                        "rule_hits": record.rule_hits,
                    }
                )

    async def _dispatch(
        self, request: web.Request, snapshot: Snapshot, route: Route, path: str, query: str
    ) -> web.StreamResponse:
        limits = snapshot.settings.limits
        if len(request.raw_headers) > limits.max_header_count:
            return self._reject(route, "headers", 431, "too many request headers")
        declared = request.content_length
        if declared is not None and declared > limits.max_body_bytes:
            return self._reject(route, "body_size", 413, "request body too large")
        if route.mode == "drop":
            await _discard_body(request, limits.max_body_bytes)
            return self._drop(route, "dropped")
        if route.mode == "block":
            _count(route, "blocked")
            return json_response(
                403, error="blocked by policy", route=route.name, category=route.category
            )
        if route.mode == "forward":
            return await self._forward(request, route, limits, path, query, declared)
        with self._admission.reservation(limits) as reservation:
            return await self._scrub(request, snapshot, route, path, query, reservation)

    async def _scrub(
        self,
        request: web.Request,
        snapshot: Snapshot,
        route: Route,
        path: str,
        query: str,
        reservation: Reservation,
    ) -> web.StreamResponse:
        limits = snapshot.settings.limits
        raw = await self._read_whole_body(request, route, limits, reservation)
        if isinstance(raw, web.Response):
            return raw
        metrics.labelled(metrics.RECEIVED_BYTES, route.name).inc(len(raw))
        metrics.labelled(metrics.BODY_BYTES, route.name).observe(len(raw))
        started = time.perf_counter()
        fields: set[str] = set()
        try:
            scrubbed = scrub_request(
                route,
                limits,
                raw,
                content_type=request.headers.get("Content-Type"),
                content_encoding=request.headers.get("Content-Encoding"),
                path=path,
                query=query,
                explain=self._audit is not None,
                observe=(lambda result: fields.update(field_paths(result.value)))
                if self._audit
                else None,
            )
        except PayloadError as error:
            return self._unparseable(route, error)
        finally:
            metrics.labelled(metrics.ENGINE_SECONDS, route.name).observe(
                time.perf_counter() - started
            )
        _count_outcome(route, scrubbed.outcome)
        if scrubbed.empty:
            return self._drop(route, "dropped")
        outgoing = _Outgoing(
            route=route,
            limits=limits,
            method=request.method,
            path=path,
            query=scrubbed.query,
            headers=request_headers(route, request.headers, len(scrubbed.body)),
            body=scrubbed.body,
            verdict="scrubbed" if scrubbed.outcome.changed else "forwarded",
        )
        response = await self._send_scrubbed(request, outgoing)
        if self._audit is not None and _EXCHANGE.get().verdict != "failed":
            self._audit.record(
                route=route.name,
                category=route.category,
                upstream=urlsplit(route.upstream).hostname or "",
                status=response.status,
                outcome=scrubbed.outcome,
                fields=fields,
            )
        return response

    async def _forward(
        self,
        request: web.Request,
        route: Route,
        limits: Limits,
        path: str,
        query: str,
        declared: int | None,
    ) -> web.StreamResponse:
        """Send the client's request upstream unchanged (forward mode). A chunked body
        is read first (bounded like a scrubbed one) and sent with its length, so the
        upstream never sees a body cut off at the size limit; so is a body of up to
        ``_BUFFERED_FORWARD_BYTES``: one write upstream costs less CPU than relaying it
        chunk by chunk, and telemetry bodies are that small. Larger ones are streamed."""
        if request.body_exists and (declared is None or declared <= _BUFFERED_FORWARD_BYTES):
            with self._admission.reservation(limits) as reservation:
                body = await self._read_whole_body(request, route, limits, reservation)
                if isinstance(body, web.Response):
                    return body
                return await self._forward_body(request, route, limits, path, query, body)
        return await self._forward_body(request, route, limits, path, query, None, declared)

    async def _read_whole_body(
        self, request: web.Request, route: Route, limits: Limits, reservation: Reservation
    ) -> bytes | web.Response:
        """The whole body (bounded in size, time and buffered bytes), or the answer that
        refuses it. That answer closes the connection: the rest of the body is never read,
        so the connection cannot carry another request (RFC 9112 §9.6)."""
        try:
            if request.content.is_eof():
                # A body that has all arrived (the usual small one) is taken from the
                # buffer at once: no timeout context, no async iteration (~10 us less).
                return _buffered_body(request, limits.max_body_bytes, reservation)
            async with asyncio.timeout(limits.client_body_timeout):
                return await _read_body(request, limits.max_body_bytes, reservation)
        except LimitExceeded:
            refusal = self._reject(route, "body_size", 413, "request body too large")
        except BufferFull:
            refusal = _overloaded(route, "buffered_bytes")
        except TimeoutError:
            refusal = self._reject(route, "body_timeout", 408, "request body not received in time")
        except (ConnectionError, aiohttp.ClientPayloadError, asyncio.IncompleteReadError):
            # The client sent less than it announced and went away: nothing to forward.
            refusal = self._reject(route, "truncated_body", 400, "request body ended early")
        refusal.force_close()
        return refusal

    async def _forward_body(
        self,
        request: web.Request,
        route: Route,
        limits: Limits,
        path: str,
        query: str,
        body: bytes | None,
        declared: int | None = None,
    ) -> web.StreamResponse:
        """Send ``body`` upstream, or when it is ``None`` stream the request's own body
        (``declared`` bytes long, or chunked when ``None``)."""
        if body is not None:
            length: int | None = len(body)
            payload: bytes | aiohttp.StreamReader | None = body
        else:
            length = declared if request.body_exists else None
            payload = request.content if request.body_exists else None
        headers = request_headers(route, request.headers, length)
        url = upstream_url(route, path, query)
        try:
            upstream = await self._send(route, limits, request.method, url, headers, payload)
        except UpstreamUnavailable as error:
            return _upstream_failed(route, error)
        _count(route, "forwarded")
        return await _relay(request, upstream)

    async def _send_scrubbed(self, request: web.Request, outgoing: _Outgoing) -> web.StreamResponse:
        """Send a scrubbed body upstream; when the upstream fails and the route spools, the
        body goes to the spool and the client gets the route's success answer."""
        route = outgoing.route
        spooler = self._spooler if route.on_upstream_failure == "spool" else None
        if spooler is not None and spooler.backlog(route.name):
            # Queue behind what is already waiting, so the route's order holds.
            if await self._spool(spooler, outgoing):
                return _drop_response(route)
            return _overloaded(route, "spool_full")
        url = upstream_url(route, outgoing.path, outgoing.query)
        try:
            upstream = await self._send(
                route, outgoing.limits, outgoing.method, url, outgoing.headers, outgoing.body
            )
        except UpstreamUnavailable as error:
            if spooler is not None and await self._spool(spooler, outgoing):
                return _drop_response(route)
            return _upstream_failed(route, error)
        except asyncio.CancelledError:
            # Shutdown ran out of drain time: keep what could not be delivered.
            if spooler is not None:
                await self._spool(spooler, outgoing)
            raise
        if (
            spooler is not None
            and retryable(upstream.status)
            and await self._spool(spooler, outgoing)
        ):
            upstream.release()
            return _drop_response(route)
        _count(route, outgoing.verdict)
        metrics.labelled(metrics.SENT_BYTES, route.name).inc(len(outgoing.body))
        _EXCHANGE.get().bytes_out = len(outgoing.body)
        return await _relay(request, upstream)

    async def _send(
        self,
        route: Route,
        limits: Limits,
        method: str,
        url: str,
        headers: CIMultiDict[str],
        body: bytes | aiohttp.StreamReader | None,
    ) -> aiohttp.ClientResponse:
        started = time.perf_counter()
        try:
            upstream = await self._forwarder.send(route, limits, method, url, headers, body)
        except UpstreamUnavailable as error:
            kind = "timeout" if error.timeout else "error"
            metrics.labelled(metrics.UPSTREAM_RESPONSES, route.name, kind).inc()
            raise
        metrics.labelled(metrics.UPSTREAM_SECONDS, route.name).observe(
            time.perf_counter() - started
        )
        metrics.labelled(
            metrics.UPSTREAM_RESPONSES, route.name, metrics.status_class(upstream.status)
        ).inc()
        return upstream

    async def _spool(self, spooler: Spooler, outgoing: _Outgoing) -> bool:
        reason = await spooler.put(outgoing.spooled())
        if reason is None:
            _count(outgoing.route, "spooled")
            return True
        log.warning("route %s: request could not be spooled (%s)", outgoing.route.name, reason)
        return False

    async def deliver_spooled(self, spooled: SpooledRequest) -> Attempt:
        """Send one spooled request with the route's current settings."""
        snapshot = self._holder.current
        route = snapshot.settings.route(spooled.route)
        if route is None:
            return Attempt("route_removed")
        url = upstream_url(route, spooled.path, spooled.query)
        headers = CIMultiDict(spooled.headers)
        limits = snapshot.settings.limits
        try:
            upstream = await self._send(route, limits, spooled.method, url, headers, spooled.body)
        except UpstreamUnavailable:
            return Attempt("retry")
        async with upstream:
            attempt = classify(upstream.status, upstream.headers.get("Retry-After"))
        if attempt.result == "delivered":
            metrics.labelled(metrics.SENT_BYTES, route.name).inc(len(spooled.body))
        return attempt

    def _drop(self, route: Route, verdict: str) -> web.Response:
        _count(route, verdict)
        return _drop_response(route)

    def _reject(self, route: Route, reason: str, status: int, message: str) -> web.Response:
        metrics.PAYLOAD_ERRORS.labels(route=route.name, codec="http", reason=reason).inc()
        _count(route, "rejected")
        return json_response(status, error=message, route=route.name)

    def _unparseable(self, route: Route, error: PayloadError) -> web.Response:
        reason = error.limit if isinstance(error, LimitExceeded) else "unparseable"
        metrics.PAYLOAD_ERRORS.labels(route=route.name, codec=error.codec, reason=reason).inc()
        # PayloadError carries the codec and a reason, never content.
        log.info("route %s: request not forwarded (%s: %s)", route.name, error.codec, error.reason)
        _count(route, "rejected")
        if isinstance(error, LimitExceeded) and error.limit in _SIZE_LIMITS:
            return json_response(413, error=str(error), route=route.name)
        if route.on_unparseable == "drop":
            return _drop_response(route)
        return json_response(400, error=str(error), route=route.name)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A scrubbed request ready to go upstream (or to the spool)."""

    route: Route
    limits: Limits
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes
    verdict: str

    def spooled(self) -> SpooledRequest:
        return SpooledRequest(
            route=self.route.name,
            method=self.method,
            path=self.path,
            query=self.query,
            headers=tuple(self.headers.items()),
            body=self.body,
            created=time.time(),
        )


def _upstream_failed(route: Route, error: UpstreamUnavailable) -> web.Response:
    _count(route, "failed")
    log.warning(
        "upstream %s for route %s", "timed out" if error.timeout else "unreachable", route.name
    )
    return json_response(504 if error.timeout else 502, error=str(error), route=route.name)


def _overloaded(route: Route, reason: str) -> web.Response:
    metrics.OVERLOAD_REJECTIONS.labels(route=route.name, reason=reason).inc()
    metrics.labelled(metrics.REQUESTS, route.name, route.category, "rejected").inc()
    response = json_response(503, error="scrubgate is overloaded, retry later", route=route.name)
    response.headers["Retry-After"] = "1"
    return response


def _drop_response(route: Route) -> web.Response:
    """The success a client gets when nothing of its request is sent (per route)."""
    return web.Response(
        status=route.drop_status,
        body=route.drop_body,
        headers={"Content-Type": route.drop_content_type},
    )


_SIZE_LIMITS = frozenset({"max_body_bytes", "max_decoded_bytes", "max_ratio"})
"""Limits answered 413; the others (depth, number of values, parts) follow on_unparseable."""


@dataclass(slots=True)
class _Exchange:
    """What the access log line of one request reports (no values, only counts)."""

    verdict: str = "failed"
    bytes_out: int = 0
    rule_hits: dict[str, int] | None = None


_EXCHANGE: ContextVar[_Exchange] = ContextVar("scrubgate_exchange")
"""Set by ``ProxyHandler.handle`` for the duration of each routed request."""


def _count(route: Route, verdict: str) -> None:
    metrics.labelled(metrics.REQUESTS, route.name, route.category, verdict).inc()
    _EXCHANGE.get().verdict = verdict


def _count_outcome(route: Route, outcome: Outcome) -> None:
    # Rule ids and detector names come from the settings: few, so their series are cached.
    for rule, hits in outcome.rule_hits.items():
        metrics.labelled(metrics.RULE_HITS, route.name, rule).inc(hits)
    _EXCHANGE.get().rule_hits = dict(outcome.rule_hits)
    for detector, hits in outcome.detector_hits.items():
        metrics.labelled(metrics.DETECTOR_HITS, route.name, detector).inc(hits)
    metrics.labelled(metrics.EVENTS, route.name, "kept").inc(outcome.events_out)
    metrics.labelled(metrics.EVENTS, route.name, "dropped").inc(
        outcome.events_in - outcome.events_out
    )


async def _read_body(request: web.Request, limit: int, reservation: Reservation) -> bytes:
    chunks: list[bytes] = []
    total = 0
    declared = request.content_length
    async for chunk in request.content.iter_any():
        total += len(chunk)
        _hold(total, declared, limit, reservation)
        chunks.append(chunk)
    return b"".join(chunks)


def _buffered_body(request: web.Request, limit: int, reservation: Reservation) -> bytes:
    """The body of a request whose body has all arrived (``request.content.is_eof()``)."""
    body = request.content.read_nowait()
    _hold(len(body), None, limit, reservation)
    return body


def _hold(total: int, declared: int | None, limit: int, reservation: Reservation) -> None:
    """Account for ``total`` bytes of body read so far, holding at least the ``declared``
    length (Content-Length) from the first chunk on."""
    if total > limit:
        raise LimitExceeded("http", "max_body_bytes", "request body too large")
    if not reservation.grow(max(total, declared or 0)):
        raise BufferFull


class BufferFull(Exception):
    """Buffering this body would exceed ``limits.max_buffered_bytes``."""


async def _discard_body(request: web.Request, limit: int) -> None:
    """Read and forget a dropped request's body so the connection stays reusable."""
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit:
            return


_BUFFERED_FORWARD_BYTES = 1 << 20
"""Forward-mode bodies up to this size (by Content-Length) are read whole, then sent."""

_SMALL_ANSWER = 64 * 1024
"""Upstream answers up to this size are read whole and sent in one write."""


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """Send the upstream's status, headers and body to the client unchanged."""
    async with upstream:
        headers = response_headers(upstream.headers)
        length = upstream.content_length
        if (
            length is not None
            and length <= _SMALL_ANSWER
            and request.method != "HEAD"
            and upstream.status not in (204, 304)
        ):
            # aiohttp sends a Response after the handler returns and drops it quietly if
            # the client has gone; one write instead of three. (HEAD, 204 and 304 keep the
            # streamed path: their Content-Length describes a body that is not sent.)
            body = await upstream.read()
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=body
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        if length is not None:
            response.content_length = length
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            # The client went away while the answer streamed: nothing left to do for it.
            metrics.CLIENT_DISCONNECTS.inc()
        return response


def proxy_server(
    holder: SettingsHolder,
    forwarder: Forwarder,
    listener: Listener,
    audit: AuditLog | None = None,
    admission: Admission | None = None,
    spooler: Spooler | None = None,
) -> web.Server:
    """The aiohttp server of one proxy listener. A low-level server, not an Application:
    every request goes to one handler, so the router and middleware machinery would only
    cost time."""
    handler = ProxyHandler(holder, forwarder, listener.name, audit, admission, spooler)
    limits = holder.current.settings.limits
    forward_proxy = holder.current.settings.forward_proxy
    if forward_proxy is not None and forward_proxy.listener == listener.name:
        # The forward-proxy listener routes by destination (which listener that is, is
        # read at start).
        route_by_destination = proxy_middleware(holder, listener.name)

        async def serve(request: web.BaseRequest) -> web.StreamResponse:
            return await route_by_destination(request, handler.handle)  # type: ignore[arg-type]

    else:

        async def serve(request: web.BaseRequest) -> web.StreamResponse:
            if request.method == "CONNECT":
                return refuse_connect(listener.name)
            return await handler.handle(request)  # type: ignore[arg-type]

    return web.Server(
        serve,
        access_log=None,
        # Bodies are decompressed by our own bounded decoders, never by aiohttp.
        auto_decompress=False,
        max_field_size=limits.max_header_bytes,
        max_line_size=limits.max_header_bytes,
        # aiohttp closes a connection that has no complete request head this long after
        # it opened or after its last response: the slow-header defence.
        keepalive_timeout=limits.client_header_timeout,
    )


# --- lifecycle ---------------------------------------------------------------------------


class ScrubgateServer:
    """Runs every listener plus the admin listener until stopped.

    ``worker_index`` says which of the instance's worker processes this is (0 when there is
    only one). A ``supervised`` server is one of several workers under
    :mod:`proxy.supervisor`: it shares its listener ports with the other workers
    (SO_REUSEPORT) and leaves the admin listener and settings-file watching to the
    supervisor.
    """

    def __init__(
        self, holder: SettingsHolder, *, worker_index: int = 0, supervised: bool = False
    ) -> None:
        self.holder = holder
        self.worker_index = worker_index
        self.supervised = supervised
        self.ready = asyncio.Event()
        self._proxy_runners: list[web.BaseRunner] = []
        self._admin_runner: web.BaseRunner | None = None
        self._tls: dict[str, ssl.SSLContext] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._in_flight_sampler: asyncio.Task[None] | None = None
        holder.on_swap(self._reload_certificates)
        holder.on_swap(_freeze_long_lived_objects)
        settings = holder.current.settings
        self._forwarder = Forwarder(settings.limits)
        # Audit and spool settings are read at start; a reload keeps them open.
        audit = settings.audit
        self._audit = (
            AuditLog(
                audit_path(audit.file, worker_index, supervised), audit.max_bytes, audit.backups
            )
            if audit.file
            else None
        )
        self._admission = Admission()
        self._delivery = ProxyHandler(holder, self._forwarder, "spool", None)
        self.spooler = (
            Spooler(settings.spool, worker_index, self._delivery.deliver_spooled, settings.workers)
            if settings.spool.directory
            else None
        )
        self.bound: dict[str, int] = {}

    async def start(self) -> None:
        metrics.record_build_info()
        if self.holder.current.settings.reload.watch and not self.supervised:
            self._watcher = asyncio.create_task(self.watch_settings())
        await self._forwarder.start()
        if self.spooler is not None:
            await self.spooler.start()
        settings = self.holder.current.settings
        forward_listener = settings.forward_proxy.listener if settings.forward_proxy else None
        for listener in settings.listeners:
            server = proxy_server(
                self.holder, self._forwarder, listener, self._audit, self._admission, self.spooler
            )
            runner = await self._serve(
                server,
                listener.name,
                listener.host,
                listener.port,
                self._tls_context(listener),
                forward_proxy=listener.name == forward_listener,
            )
            self._proxy_runners.append(runner)
        admin = settings.admin
        if not self.supervised:
            self._admin_runner = await self._serve(
                ProcessAdmin(self.holder, self.ready).app(), "admin", admin.host, admin.port, None
            )
        self._report_in_flight()
        _freeze_long_lived_objects()
        gc.set_threshold(_YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
        self.ready.set()

    def _report_in_flight(self) -> None:
        """Export the admission's count of requests in flight. It is read when /metrics is
        scraped, or with several workers written every second (the supervisor merges the
        workers' files), instead of moving the gauge twice in every request: that cost
        ~3 us of a forwarded request's ~200 us of CPU under load."""
        if self.supervised:
            self._in_flight_sampler = asyncio.create_task(self._sample_in_flight())
        else:
            metrics.IN_FLIGHT.set_function(lambda: self._admission.in_flight)

    async def _sample_in_flight(self) -> None:
        while True:
            metrics.IN_FLIGHT.set(self._admission.in_flight)
            await asyncio.sleep(_IN_FLIGHT_SAMPLE_SECONDS)

    async def _serve(
        self,
        app: web.Application | web.Server,
        name: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        forward_proxy: bool = False,
    ) -> web.BaseRunner:
        limits = self.holder.current.settings.limits
        runner: web.BaseRunner = (
            web.ServerRunner(app, shutdown_timeout=limits.drain_timeout)
            if isinstance(app, web.Server)
            else web.AppRunner(app, access_log=None, shutdown_timeout=limits.drain_timeout)
        )
        await runner.setup()
        site: web.BaseSite = (
            ForwardProxySite(runner, self.holder, name, host, port, reuse_port=self.supervised)
            if forward_proxy
            else web.TCPSite(
                runner, host, port, ssl_context=tls, reuse_address=True, reuse_port=self.supervised
            )
        )
        await site.start()
        sockets = [sock for server in [site._server] if server for sock in server.sockets]  # type: ignore[attr-defined]
        self.bound[name] = sockets[0].getsockname()[1] if sockets else port
        log.info("listening: %s on %s:%d", name, host, self.bound[name])
        return runner

    def _tls_context(self, listener: Listener) -> ssl.SSLContext | None:
        if not listener.cert_file or not listener.key_file:
            return None
        self._tls[listener.name] = server_tls_context(listener.cert_file, listener.key_file)
        return self._tls[listener.name]

    def _reload_certificates(self, snapshot: Snapshot) -> None:
        for listener in snapshot.settings.listeners:
            context = self._tls.get(listener.name)
            if context is not None and listener.cert_file and listener.key_file:
                # Validated by the settings load that produced this snapshot.
                context.load_cert_chain(listener.cert_file, listener.key_file)

    async def stop(self) -> None:
        """Drain: stop accepting, let requests in flight finish for up to
        ``limits.drain_timeout`` (scrubbed ones still unsent then go to the spool), stop
        delivering from the spool (it stays on disk), and close the admin listener last."""
        self.ready.clear()
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.gather(*(runner.cleanup() for runner in self._proxy_runners))
        if self._in_flight_sampler is not None:
            self._in_flight_sampler.cancel()
            metrics.IN_FLIGHT.set(self._admission.in_flight)
        if self.spooler is not None:
            await self.spooler.stop()
        await self._forwarder.close()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
        if self._audit is not None:
            self._audit.close()

    async def run_forever(self) -> None:
        """Serve until SIGTERM/SIGINT, then drain; reload settings on SIGHUP."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        loop.add_signal_handler(signal.SIGINT, stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_from_signal)
        await self.start()
        await stopping.wait()
        log.info(
            "shutting down: draining requests in flight for up to %ss",
            self.holder.current.settings.limits.drain_timeout,
        )
        await self.stop()
        log.info("stopped")

    async def watch_settings(self) -> None:
        """Reload whenever the settings file's content changes (polling, so it also sees
        the symlink swaps Kubernetes uses for ConfigMaps). A broken version is reported
        once, not on every poll."""
        path = Path(self.holder.path)
        failed_digest = None
        while True:
            await asyncio.sleep(self.holder.current.settings.reload.interval)
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
            if digest in (self.holder.current.settings.digest, failed_digest):
                continue
            result = self.holder.reload()
            failed_digest = None if result.ok else digest
            log_reload(log, result, "settings file changed")

    def _reload_from_signal(self) -> None:
        log_reload(log, self.holder.reload(), "SIGHUP")


_IN_FLIGHT_SAMPLE_SECONDS: Final = 1.0
"""How often a worker (of several) writes its count of requests in flight."""

_YOUNG_GENERATION_THRESHOLD: Final = 5_000
"""Container objects allocated (net of those freed) between two collections of the
youngest generation; CPython's default is 700. Parsing a 127 KB batch allocates ~460
containers that all die together when the request ends: at 700 a collection ran about
every other request, traversed the live document and promoted it to the older
generations, ~0.09 ms a request (3% of the CPU of scrubbing that batch, measured under
load). At 5,000 a collection runs when garbage only the collector can free (reference
cycles) has piled up, or while a body of over ~1 MB is parsed."""


def _freeze_long_lived_objects(_snapshot: Snapshot | None = None) -> None:
    """Move everything alive now (settings, compiled plans, libraries' tables) out of the
    cyclic garbage collector's view. Otherwise every full collection walks those tens of
    thousands of objects again, which costs more per request than the proxying itself.
    On reload the freeze is lifted first so a replaced plan can still be collected."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context. Certificates are loaded again into the same context on
    reload, so new connections get the new certificate without a restart."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
