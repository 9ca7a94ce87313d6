"""Forward-proxy mode: the listener named by ``forward_proxy.listener`` serves clients that
use scrubgate as their ``HTTP_PROXY``/``HTTPS_PROXY``.

- Plain-HTTP requests in absolute form (``GET http://vendor.example/collect``) are routed
  by the destination host and path through the ordinary route table, so they are
  forwarded, scrubbed, dropped or blocked like any route. A host no route names: 403.
- ``CONNECT host:port`` is allowed only to the ``destinations`` allowlist. ``tunnel``
  relays the bytes both ways without inspecting them; ``intercept`` answers 200, ends TLS
  with a certificate minted for the host by the admin's CA, and serves the decrypted
  requests through the route table as if their Host were the CONNECT host (each route's
  upstream is then reached over verified TLS as usual). Anything else: 403.

aiohttp's server cannot hand a connection over after CONNECT, so every connection of the
forward-proxy listener first meets :class:`_FrontDoor`, which reads just enough to tell
CONNECT from any other request. Other requests go to aiohttp's request handler, with the
bytes already read. On every other listener, CONNECT and absolute-form requests are
refused (:func:`proxy_middleware` and the route table), so there is no open relay.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from http import HTTPStatus

import orjson
from aiohttp import web
from prometheus_client import Counter
from yarl import URL

from proxy import metrics
from proxy.certificates import CertificateAuthority, ServerContexts
from proxy.log import access
from proxy.settings import FORWARD_PROXY, Destination, ForwardProxy, split_destination
from proxy.state import SettingsHolder

log = logging.getLogger("scrubgate")

NO_DESTINATION = "-"
"""The ``destination`` label of CONNECT requests no allowlist entry matched."""

_CONNECT = b"CONNECT "
_DEFAULT_IDLE_TIMEOUT: float = FORWARD_PROXY.fields["idle_timeout"].default
_AUTHORITY_WITH_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\[\]:/@*\s]+):[0-9]{1,5}$")
_ESTABLISHED = b"HTTP/1.1 200 Connection Established\r\n\r\n"

CONNECT_HOST: ContextVar[str | None] = ContextVar("scrubgate_connect_host", default=None)
"""The CONNECT host of the intercepted connection a request arrived on (else ``None``).

It is set while aiohttp's protocol is attached to the decrypted connection: asyncio
copies the context into the task aiohttp creates there, and from it into every request
handled on that connection."""


# --- pure helpers ------------------------------------------------------------------------


def find_destination(
    destinations: tuple[Destination, ...], host: str, port: int
) -> Destination | None:
    """The first allowlist entry for ``host:port``. ``*.domain`` matches every subdomain
    of ``domain`` at any depth, not ``domain`` itself."""
    for destination in destinations:
        if destination.port != port:
            continue
        if destination.host == host:
            return destination
        if destination.host.startswith("*.") and host.endswith(destination.host[1:]):
            return destination
    return None


def parse_connect_target(target: str) -> tuple[str, int] | None:
    """``host:port`` of a CONNECT request (lowercase host, brackets removed), or ``None``
    when it is not a plain authority with an explicit port."""
    if not _AUTHORITY_WITH_PORT.match(target):
        return None
    try:
        return split_destination(target)
    except ValueError:
        return None


def split_absolute_form(target: str) -> tuple[str, str] | None:
    """(lowercase host, origin-form target) of an ``http://`` absolute-form request target,
    or ``None`` for anything else (origin-form, other schemes, userinfo)."""
    scheme, separator, rest = target.partition("://")
    if not separator or scheme.lower() != "http":
        return None
    cut = min((index for index in (rest.find("/"), rest.find("?")) if index != -1), default=-1)
    authority, remainder = (rest, "") if cut == -1 else (rest[:cut], rest[cut:])
    if not authority or "@" in authority:
        return None
    if authority.startswith("["):
        host = authority[1 : authority.find("]")]
    else:
        host = authority.partition(":")[0]
    if not host:
        return None
    if not remainder.startswith("/"):
        remainder = "/" + remainder
    return host.lower(), remainder


def parse_connect_head(head: bytes) -> str | None:
    """The target of a ``CONNECT target HTTP/1.x`` request head, or ``None``."""
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[0] != "CONNECT" or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        return None
    return parts[1]


def active_forward_proxy(holder: SettingsHolder, listener: str) -> ForwardProxy | None:
    """The forward-proxy settings in force if ``listener`` is the forward-proxy listener."""
    forward = holder.current.settings.forward_proxy
    return forward if forward is not None and forward.listener == listener else None


# --- plain HTTP: aiohttp middleware ------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def proxy_middleware(
    holder: SettingsHolder, listener: str
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """How the forward-proxy listener's server routes a request (the others only refuse
    CONNECT, with :func:`refuse_connect`).

    CONNECT reaching aiohttp is refused with 403 (normally it is handled before aiohttp,
    when it opens its connection). On the forward-proxy listener,
    absolute-form requests are routed by their host and path, and decrypted requests of an
    intercepted connection by the CONNECT host; no route for that host: 403. Everything
    else goes to the handler unchanged, where an absolute-form target matches no route.
    """

    @web.middleware
    async def route_by_destination(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "CONNECT":
            return refuse_connect(listener)
        intercepted = CONNECT_HOST.get()
        if intercepted is not None:
            # Decrypted requests go where the client's CONNECT said, whatever their Host.
            host, target = intercepted, request.raw_path
        elif active_forward_proxy(holder, listener) is None:
            return await handler(request)
        elif (absolute := split_absolute_form(request.raw_path)) is not None:
            host, target = absolute
        else:
            return await handler(request)
        path = target.partition("?")[0]
        if holder.current.routes.match(listener, request.method, host, path) is None:
            metrics.UNROUTED.labels(listener=listener).inc()
            return _json(403, "no route for this destination")
        return await handler(request.clone(rel_url=URL(target, encoded=True), host=host))

    return route_by_destination


def refuse_connect(listener: str) -> web.Response:
    """The answer to a CONNECT that reached aiohttp (never allowed there): 403, counted,
    and the connection closed."""
    _count_connect(listener, NO_DESTINATION, "refused")
    response = _json(403, "CONNECT is not allowed on this listener")
    response.force_close()
    return response


def _json(status: int, error: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps({"error": error}), content_type="application/json"
    )


def _count_connect(listener: str, destination: str, outcome: str) -> None:
    metrics.CONNECT_REQUESTS.labels(
        listener=listener, destination=destination, outcome=outcome
    ).inc()


# --- the listener ------------------------------------------------------------------------


class ForwardProxySite(web.BaseSite):
    """An aiohttp site whose connections start at :class:`_FrontDoor`; plain-HTTP requests
    are served by the runner's app, so they share its routes, limits and shutdown."""

    __slots__ = ("_gate", "_host", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        holder: SettingsHolder,
        listener: str,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner)
        assert runner.server is not None, "runner.setup() must run first"
        self._gate = ConnectGate(holder, listener, runner.server)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        return f"forward proxy http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _FrontDoor(self._gate),
            self._host,
            self._port,
            reuse_address=True,
            reuse_port=self._reuse_port,
        )

    async def stop(self) -> None:
        self._gate.close_all()
        await super().stop()


class _FrontDoor(asyncio.Protocol):
    """The first protocol of a forward-proxy connection. As soon as the first bytes are
    not ``CONNECT``, the connection goes to aiohttp with those bytes; a CONNECT head
    (bounded by ``limits.max_header_bytes``) goes to the :class:`ConnectGate`. A
    connection that does not finish its head within the idle timeout is closed."""

    def __init__(self, gate: ConnectGate) -> None:
        self._gate = gate
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(
            self._gate.idle_timeout(), transport.close
        )
        self._gate.waiting.add(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        if not _CONNECT.startswith(bytes(self._buffer[: len(_CONNECT)])):
            self._leave()
            self._gate.serve_http(self._transport, bytes(self._buffer))
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end == -1:
            if len(self._buffer) > self._gate.max_head_bytes():
                self._leave()
                _answer(self._transport, 431, "CONNECT request head too large")
            return
        self._leave()
        self._transport.pause_reading()
        self._gate.connect(
            self._transport, bytes(self._buffer[:end]), bytes(self._buffer[end + 4 :])
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._gate.waiting.discard(self._transport)  # type: ignore[arg-type]


class ConnectGate:
    """Decides and carries out CONNECT requests of one forward-proxy listener, with the
    settings in force when each request arrives (the allowlist and CA follow reloads)."""

    def __init__(
        self, holder: SettingsHolder, listener: str, http: Callable[[], asyncio.Protocol]
    ) -> None:
        self._holder = holder
        self.listener = listener
        self._http = http
        self._contexts: ServerContexts | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.tunnels: set[_Tunnel] = set()
        self.waiting: set[asyncio.Transport] = set()

    def idle_timeout(self) -> float:
        forward = active_forward_proxy(self._holder, self.listener)
        return forward.idle_timeout if forward is not None else _DEFAULT_IDLE_TIMEOUT

    def max_head_bytes(self) -> int:
        return self._holder.current.settings.limits.max_header_bytes

    def serve_http(self, transport: asyncio.Transport, received: bytes) -> None:
        """Hand the connection to aiohttp, replaying the bytes read so far."""
        protocol = self._http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(received)

    def connect(self, transport: asyncio.Transport, head: bytes, early: bytes) -> None:
        """Answer a CONNECT request (``early``: bytes the client sent after its head)."""
        task = asyncio.get_running_loop().create_task(self._connect(transport, head, early))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close_all(self) -> None:
        """Close every tunnel and every connection still in its first request head."""
        for task in list(self._tasks):
            task.cancel()
        for tunnel in list(self.tunnels):
            tunnel.close()
        for transport in list(self.waiting):
            transport.close()

    async def _connect(self, transport: asyncio.Transport, head: bytes, early: bytes) -> None:
        try:
            await self._answer_connect(transport, head, early)
        except asyncio.CancelledError:
            transport.abort()
            raise
        except Exception as error:
            # E.g. a CA that expired after it was loaded: answer instead of hanging.
            log.error("CONNECT on listener %s failed (%s)", self.listener, type(error).__name__)
            if not transport.is_closing():
                _answer(transport, 500, "CONNECT failed")

    async def _answer_connect(
        self, transport: asyncio.Transport, head: bytes, early: bytes
    ) -> None:
        started = time.perf_counter()
        target = parse_connect_head(head)
        address = parse_connect_target(target) if target is not None else None
        forward = active_forward_proxy(self._holder, self.listener)
        if forward is None:
            self._refuse(transport, started, 403, "CONNECT is not allowed on this listener")
            return
        if address is None:
            self._refuse(transport, started, 400, "expected CONNECT host:port HTTP/1.1")
            return
        host, port = address
        destination = find_destination(forward.destinations, host, port)
        if destination is None:
            self._refuse(transport, started, 403, "CONNECT to this destination is not allowed")
        elif destination.action == "tunnel":
            await self._tunnel(transport, forward, destination, host, port, early)
        elif early:
            # The TLS layer cannot be given bytes already read; clients wait for the 200.
            self._finish(transport, destination, "failed", 400, started, "sent data before 200")
        else:
            assert forward.authority is not None, "checked when the settings were loaded"
            await self._intercept(transport, forward.authority, destination, host, started)

    def _refuse(
        self, transport: asyncio.Transport, started: float, status: int, error: str
    ) -> None:
        _count_connect(self.listener, NO_DESTINATION, "refused")
        _log_connect(self.listener, NO_DESTINATION, "refused", status, started)
        _answer(transport, status, error)

    def _finish(
        self,
        transport: asyncio.Transport,
        destination: Destination,
        outcome: str,
        status: int,
        started: float,
        error: str,
    ) -> None:
        _count_connect(self.listener, destination.label, outcome)
        _log_connect(self.listener, destination.label, outcome, status, started)
        _answer(transport, status, error)

    async def _tunnel(
        self,
        transport: asyncio.Transport,
        forward: ForwardProxy,
        destination: Destination,
        host: str,
        port: int,
        early: bytes,
    ) -> None:
        started = time.perf_counter()
        if len(self.tunnels) >= forward.max_tunnels:
            self._finish(transport, destination, "overloaded", 503, started, "too many tunnels")
            return
        tunnel = _Tunnel(self, destination.label, forward.idle_timeout, transport)
        limits = self._holder.current.settings.limits
        try:
            async with asyncio.timeout(limits.upstream_connect_timeout):
                await asyncio.get_running_loop().create_connection(
                    lambda: tunnel.upstream, host, port
                )
        except TimeoutError:
            tunnel.close()
            self._finish(transport, destination, "failed", 504, started, "destination timed out")
            return
        except OSError:
            tunnel.close()
            self._finish(transport, destination, "failed", 502, started, "destination unreachable")
            return
        _count_connect(self.listener, destination.label, "tunnelled")
        tunnel.open(early, started)

    async def _intercept(
        self,
        transport: asyncio.Transport,
        authority: CertificateAuthority,
        destination: Destination,
        host: str,
        started: float,
    ) -> None:
        context = self._server_contexts(authority).context_for(host)
        transport.write(_ESTABLISHED)
        protocol = self._http()
        try:
            decrypted = await asyncio.get_running_loop().start_tls(
                transport, protocol, context, server_side=True
            )
        except OSError:
            transport.abort()
            _count_connect(self.listener, destination.label, "failed")
            _log_connect(self.listener, destination.label, "failed", 200, started)
            log.warning(
                "TLS handshake failed on an intercepted connection to destination %s "
                "(does the client trust forward_proxy.ca_cert_file? clients that pin "
                "certificates need action: tunnel)",
                destination.label,
            )
            return
        if decrypted is None:
            return
        _count_connect(self.listener, destination.label, "intercepted")
        _log_connect(self.listener, destination.label, "intercepted", 200, started)
        token = CONNECT_HOST.set(host)
        try:
            protocol.connection_made(decrypted)
        finally:
            CONNECT_HOST.reset(token)

    def _server_contexts(self, authority: CertificateAuthority) -> ServerContexts:
        """Minted certificates are kept across reloads as long as the CA stays the same."""
        contexts = self._contexts
        if contexts is None or contexts.authority.fingerprint != authority.fingerprint:
            contexts = self._contexts = ServerContexts(authority)
        return contexts


class _Tunnel:
    """Two connections relaying each other's bytes, with flow control both ways,
    half-close passed on, and an idle timeout. Counted in ``scrubgate_open_tunnels``."""

    def __init__(
        self, gate: ConnectGate, label: str, idle_timeout: float, client: asyncio.Transport
    ) -> None:
        self._gate = gate
        self._label = label
        self._idle_timeout = idle_timeout
        self.client = _TunnelEnd(self, metrics.TUNNEL_BYTES.labels(label, "outbound"))
        self.upstream = _TunnelEnd(self, metrics.TUNNEL_BYTES.labels(label, "inbound"))
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.client.transport = client
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._closed = False
        gate.tunnels.add(self)
        metrics.OPEN_TUNNELS.inc()

    def open(self, early: bytes, started: float) -> None:
        """Answer 200 and start relaying; ``early`` goes upstream first."""
        client, upstream = self.client.transport, self.upstream.transport
        assert client is not None and upstream is not None
        self._started = started
        if client.is_closing():
            self.close()
            return
        client.write(_ESTABLISHED)
        client.set_protocol(self.client)
        if early:
            self.client.data_received(early)
        client.resume_reading()
        upstream.resume_reading()
        self._timer = self._loop.call_later(self._idle_timeout, self._check_idle)

    def touch(self) -> None:
        self._last_activity = self._loop.time()

    def _check_idle(self) -> None:
        deadline = self._last_activity + self._idle_timeout
        if self._loop.time() >= deadline:
            self.close()
        else:
            self._timer = self._loop.call_at(deadline, self._check_idle)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        # Before it opened, the client connection still needs its error answer.
        ends = (self.client, self.upstream) if self._started else (self.upstream,)
        for end in ends:
            if end.transport is not None:
                end.transport.close()
        self._gate.tunnels.discard(self)
        metrics.OPEN_TUNNELS.dec()
        if self._started:
            _log_connect(
                self._gate.listener,
                self._label,
                "tunnelled",
                200,
                self._started,
                bytes_out=self.client.relayed,
                bytes_in=self.upstream.relayed,
            )


class _TunnelEnd(asyncio.Protocol):
    """One side of a tunnel: what it receives is written to the other side."""

    def __init__(self, tunnel: _Tunnel, counter: Counter) -> None:
        self._tunnel = tunnel
        self._counter = counter
        self.transport: asyncio.Transport | None = None
        self.peer: _TunnelEnd | None = None
        self.relayed = 0
        self._eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # The upstream side waits until the client has its 200 answer.
        self.transport.pause_reading()  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None
        self.relayed += len(data)
        self._counter.inc(len(data))
        self._tunnel.touch()
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        assert self.peer is not None
        self._eof = True
        peer = self.peer.transport
        if self.peer._eof or peer is None or not peer.can_write_eof():
            self._tunnel.close()
            return False
        peer.write_eof()
        return True

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._tunnel.close()


def _answer(transport: asyncio.Transport, status: int, error: str) -> None:
    """Write a complete JSON error answer and close the connection."""
    body = orjson.dumps({"error": error})
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    transport.write(head.encode() + body)
    transport.close()


def _log_connect(
    listener: str,
    destination: str,
    outcome: str,
    status: int,
    started: float,
    bytes_out: int = 0,
    bytes_in: int = 0,
) -> None:
    access(
        {
            "listener": listener,
            "method": "CONNECT",
            "destination": destination,
            "outcome": outcome,
            "status": status,
            "bytes_out": bytes_out,
            "bytes_in": bytes_in,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        }
    )
