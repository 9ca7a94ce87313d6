"""Talking to upstreams: header hygiene, one pooled client session, response relay."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from functools import lru_cache
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from filters.actions import GeneralizeUserAgent
from proxy.settings import Limits, Route

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""RFC 9110 §7.6.1: headers meaningful for one connection only, never forwarded."""

_RECOMPUTED = frozenset({"host", "content-length", "expect"})

_USER_AGENT = GeneralizeUserAgent()


def _connection_tokens(headers: Mapping[str, str]) -> set[str]:
    return {
        token.strip().lower()
        for value in headers.getall("connection", [])  # type: ignore[attr-defined]
        for token in value.split(",")
        if token.strip()
    }


def request_headers(
    route: Route, headers: CIMultiDictProxy[str], body_length: int | None
) -> CIMultiDict[str]:
    """The headers sent upstream: the client's, minus hop-by-hop headers, minus what the
    route removes (cookies and client addresses by default), with User-Agent handled per
    route, and Content-Length set for the body actually sent. Host comes from the URL."""
    dropped = _never_forwarded(route.remove_headers)
    if "connection" in headers:
        dropped = dropped | _connection_tokens(headers)
    if _has_credentials(route.upstream):
        # The route's own credentials authenticate to the vendor (and aiohttp refuses a
        # request that carries both): the client's Authorization is not sent on.
        dropped = dropped | {"authorization"}
    if route.keep_only_headers is not None:
        dropped = dropped | ({name.lower() for name in headers} - route.keep_only_headers)
    forwarded = _without(headers, dropped)
    if route.user_agent != "keep" and "user-agent" in forwarded:
        if route.user_agent == "remove":
            forwarded.popall("user-agent")
        else:
            forwarded["User-Agent"] = _USER_AGENT.apply(forwarded["user-agent"])
    if body_length is not None:
        forwarded["Content-Length"] = str(body_length)
    return forwarded


@lru_cache(maxsize=256)
def _has_credentials(upstream: str) -> bool:
    return "@" in urlsplit(upstream).netloc


def response_headers(headers: CIMultiDictProxy[str]) -> CIMultiDictProxy[str] | CIMultiDict[str]:
    """The upstream's response headers as relayed to the client: unchanged except for
    hop-by-hop headers, which belong to the upstream connection. Usually there are none,
    and the upstream's own headers are returned (aiohttp copies them into the response)."""
    dropped = HOP_BY_HOP | _connection_tokens(headers) if "connection" in headers else HOP_BY_HOP
    for name in headers:
        if name.lower() in dropped:
            return _without(headers, dropped)
    return headers


def _without(headers: CIMultiDictProxy[str], dropped: AbstractSet[str]) -> CIMultiDict[str]:
    """A copy of ``headers`` without those named (lower case) in ``dropped``. The copy is
    made in multidict's C code; only names actually present are then taken out (a handful,
    where ``dropped`` lists twenty)."""
    kept = CIMultiDict(headers)
    for name in headers:
        if name.lower() in dropped:
            kept.popall(name, None)
    return kept


class _AsChosen(aiohttp.ClientRequest):
    """A request upstream with exactly the headers :func:`request_headers` chose. aiohttp
    adds Accept, Accept-Encoding and User-Agent where they are missing, and a Content-Type
    to a body without one; its own way to prevent that (``skip_auto_headers``) builds two
    header multidicts for every request (~3 us of a forwarded request under load)."""

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        # aiohttp reads this to leave out Content-Type (tests/e2e/test_headers.py).
        self._skip_auto_headers = _NEVER_ADDED


_NEVER_ADDED = CIMultiDict[None]([("Content-Type", None)])


class UpstreamUnavailable(Exception):
    """The upstream could not be reached or did not answer in time. ``timeout`` says which."""

    def __init__(self, route: str, timeout: bool) -> None:
        super().__init__(
            f"upstream of route {route!r} {'timed out' if timeout else 'is unreachable'}"
        )
        self.timeout = timeout


class Forwarder:
    """One client session for every upstream: pooled keep-alive connections, TLS
    verification (with a per-route CA bundle when configured), bounded timeouts. Bodies are
    relayed exactly as received: no automatic decompression, no re-chunking."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_concurrent_requests, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            request_class=_AsChosen,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self,
        route: Route,
        limits: Limits,
        method: str,
        url: str,
        headers: CIMultiDict[str],
        body: bytes | aiohttp.StreamReader | None,
    ) -> aiohttp.ClientResponse:
        """Send one request; raises :class:`UpstreamUnavailable` on connect/timeout errors."""
        assert self._session is not None, "Forwarder.start() was not awaited"
        timeout = _client_timeout(limits.upstream_timeout, limits.upstream_connect_timeout)
        try:
            return await self._session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=timeout,
                ssl=_ssl_context(route.tls_ca_file) if url.startswith("https:") else False,
                allow_redirects=False,
                compress=None,
            )
        except TimeoutError:
            raise UpstreamUnavailable(route.name, timeout=True) from None
        except (aiohttp.ClientError, OSError):
            raise UpstreamUnavailable(route.name, timeout=False) from None


@lru_cache(maxsize=64)
def _never_forwarded(removed_by_route: frozenset[str]) -> frozenset[str]:
    return HOP_BY_HOP | _RECOMPUTED | removed_by_route


@lru_cache(maxsize=32)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


@lru_cache(maxsize=32)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
