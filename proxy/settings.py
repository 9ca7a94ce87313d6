"""The admin's settings file: schema, typed model, and loading that builds the real plans.

``load_settings`` is what ``scrubgate check``, ``scrubgate run`` and every reload call:
it parses the YAML, checks it against the schema (every problem, with file:line:col),
reads the hash key, and compiles every policy. Only a fully valid file produces
:class:`LoadedSettings`; anything else raises :class:`SettingsError` listing all problems.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from filters.compile import EngineContext, PlanErrors, compile_policy
from filters.plan import Plan
from filters.spec import (
    ACTIONS,
    EVERYTHING,
    DetectorSettings,
    EngineLimits,
    EngineSpec,
    HashingSpec,
    OrganizationSpec,
    PolicySpec,
    RuleSpec,
)
from proxy.certificates import CertificateAuthority, CertificateError, load_certificate_authority
from proxy.schema import (
    Checker,
    Field,
    ListOf,
    MapOf,
    Marks,
    Obj,
    Problem,
    Scalar,
    Tagged,
    load_yaml_tree,
)

MODES = ("forward", "scrub", "drop", "block")
BUILTIN_CATEGORIES = ("feedback", "analytics", "clickstream", "crash", "traces")
FORMATS = (
    "auto",
    "json",
    "ndjson",
    "form",
    "multipart",
    "sentry_envelope",
    "sentry_store",
    "otlp_json",
    "otlp_protobuf",
    "text",
    "binary",
)
DEFAULT_REMOVED_HEADERS = ("cookie", "x-forwarded-for", "x-real-ip", "forwarded", "referer", "via")


def _str(doc: str = "", **options: Any) -> Scalar:
    return Scalar("str", doc=doc, **options)


def _strings(doc: str = "") -> ListOf:
    return ListOf(_str(), doc=doc, single=True)


def _check_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http:// or https:// URL with a host"
    if parts.query or parts.fragment:
        return "an upstream URL cannot carry a query or fragment"
    return None


def _check_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as error:
        return f"invalid regular expression ({error.msg})"
    return None


LISTENER = Obj(
    {
        "name": Field(_str("Name routes refer to."), required=True),
        "host": Field(_str("Address to bind."), default="127.0.0.1"),
        "port": Field(Scalar("int", minimum=0, maximum=65535), required=True),
        "tls": Field(
            Obj(
                {
                    "cert_file": Field(_str("PEM certificate chain."), required=True),
                    "key_file": Field(_str("PEM private key."), required=True),
                },
                doc="Serve HTTPS (TLS 1.2+). Files are read again on reload.",
            )
        ),
    }
)

ADMIN = Obj(
    {
        "host": Field(
            _str("Address of the admin listener; keep it on loopback."), default="127.0.0.1"
        ),
        "port": Field(Scalar("int", minimum=0, maximum=65535), default=9090),
        "token_file": Field(_str("File holding the bearer token for mutating endpoints.")),
        "token_env": Field(_str("Environment variable holding that token.")),
    }
)

HASHING = Obj(
    {
        "algorithm": Field(_str(choices=("hmac-sha256", "xxh3-128")), default="hmac-sha256"),
        "key_file": Field(_str("File holding the secret hash key (>= 16 bytes, or hex:...).")),
        "key_env": Field(_str("Environment variable holding the secret hash key.")),
        "length": Field(Scalar("int", minimum=8, maximum=64), default=32),
        "prefix": Field(_str(), default=""),
    },
    doc="Keyed hashing. The key itself never appears in this file.",
)

ORGANIZATION = Obj(
    {
        "names": Field(
            _strings("Organization names, matched case-insensitively as words."), default=list
        ),
        "domains": Field(_strings("Domains; subdomains match too."), default=list),
        "hostnames": Field(_strings(), default=list),
        "cidrs": Field(_strings("Address ranges like 10.20.0.0/16."), default=list),
        "base_urls": Field(_strings("Base URLs of the product install."), default=list),
        "files": Field(
            _strings(
                "Files with one entry per line under '# names', '# domains', '# hostnames', "
                "'# cidrs' or '# base_urls' headers."
            ),
            default=list,
        ),
    }
)

DETECTORS = Obj(
    {
        "phone_regions": Field(
            _strings("Regions for phone numbers written without +country code.")
        ),
        "sensitive_query_params": Field(
            _strings("Query parameter names whose values are always redacted.")
        ),
    }
)

LIMITS = Obj(
    {
        "max_body_bytes": Field(Scalar("size", minimum=1), default=10 * 2**20),
        "max_decoded_bytes": Field(Scalar("size", minimum=1), default=50 * 2**20),
        "max_ratio": Field(Scalar("int", minimum=1), default=100),
        "max_depth": Field(Scalar("int", minimum=1, maximum=250), default=128),
        "max_values": Field(Scalar("int", minimum=1), default=1_000_000),
        "max_parts": Field(Scalar("int", minimum=1), default=1000),
        "max_header_count": Field(Scalar("int", minimum=1), default=100),
        "max_header_bytes": Field(Scalar("size", minimum=256), default=16 * 2**10),
        "max_concurrent_requests": Field(Scalar("int", minimum=1), default=1024),
        "upstream_connect_timeout": Field(Scalar("duration", minimum=0.001), default=5.0),
        "upstream_timeout": Field(Scalar("duration", minimum=0.001), default=30.0),
        "max_buffered_bytes": Field(
            Scalar(
                "size",
                minimum=1024,
                doc="Request bodies held in memory at once; beyond it new requests get 503.",
            ),
            default=256 * 2**20,
        ),
        "client_header_timeout": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="A connection without a complete request head this long after it opened or "
                "after its previous response is closed (idle keep-alive and slow clients).",
            ),
            default=15.0,
        ),
        "client_body_timeout": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="Time a client has to send the body of a request that is scrubbed; then 408.",
            ),
            default=30.0,
        ),
        "drain_timeout": Field(
            Scalar(
                "duration",
                minimum=0,
                doc="On SIGTERM, how long requests in flight may take to finish.",
            ),
            default=20.0,
        ),
    }
)

_RULE_COMMON = {
    "id": Field(_str("Shown in metrics, logs and --explain."), required=True),
    "action": Field(_str(choices=ACTIONS), required=True),
    "select": Field(
        _strings("Selectors: dotted paths with [*], *, ** and key globs."),
        default=lambda: [EVERYTHING],
    ),
    "types": Field(
        ListOf(
            _str(choices=("string", "number", "boolean", "null", "object", "array")), single=True
        ),
        default=list,
    ),
    "ignore_case": Field(Scalar("bool"), default=False),
    "description": Field(_str()),
}

_PATTERN = Obj(
    {
        "name": Field(_str(), required=True),
        "regex": Field(_str("RE2 syntax (linear time)."), required=True),
        "replacement": Field(_str()),
        "ignore_case": Field(Scalar("bool"), default=False),
    }
)

RULE = Tagged(
    tag="action",
    common=_RULE_COMMON,
    variants={
        "remove": {},
        "keep": {
            "fields": Field(_strings("Selectors (relative) of what survives."), required=True)
        },
        "hash": {},
        "mask": {
            "keep_last": Field(Scalar("int", minimum=0), default=4),
            "keep_first": Field(Scalar("int", minimum=0), default=0),
            "char": Field(_str(), default="*"),
        },
        "replace": {"with": Field(Scalar("any"), required=True)},
        "redact": {
            "detectors": Field(_strings("Detector names, or 'all'."), default="all"),
            "patterns": Field(ListOf(_PATTERN), default=list),
            "organization": Field(Scalar("bool"), default=True),
        },
        "truncate": {
            "max_length": Field(Scalar("int", minimum=1), required=True),
            "suffix": Field(_str(), default="…"),
        },
        "generalize": {
            "kind": Field(_str(choices=("ip", "url", "timestamp", "user_agent")), required=True),
            "ipv4_prefix": Field(Scalar("int", minimum=0, maximum=32), default=24),
            "ipv6_prefix": Field(Scalar("int", minimum=0, maximum=128), default=48),
            "allow_params": Field(_strings(), default=list),
            "bucket": Field(
                _str(choices=("minute", "hour", "day", "week", "month")), default="hour"
            ),
        },
        "drop-event": {
            "equals": Field(Scalar("any")),
            "in": Field(ListOf(Scalar("any"))),
            "matches": Field(_str("RE2 pattern.")),
            "exists": Field(Scalar("bool")),
        },
        "sample": {
            "rate": Field(Scalar("float", minimum=0, maximum=1), required=True),
            "missing": Field(_str(choices=("keep", "drop")), default="keep"),
        },
    },
)

POLICY = Obj(
    {"description": Field(_str()), "rules": Field(ListOf(RULE, min_items=1), required=True)}
)

MATCH = Obj(
    {
        "host": Field(_str("Host header to match (without port).")),
        "path_prefix": Field(_str(), default="/"),
        "path_regex": Field(_str(check=_check_regex)),
        "methods": Field(ListOf(_str(), single=True), default=list),
    }
)

DROP_RESPONSE = Obj(
    {
        "status": Field(Scalar("int", minimum=200, maximum=299), default=200),
        "body": Field(_str(), default="{}"),
        "content_type": Field(_str(), default="application/json"),
    },
    doc="What a client is answered when its request is dropped.",
)

HEADERS = Obj(
    {
        "remove": Field(_strings(), default=lambda: list(DEFAULT_REMOVED_HEADERS)),
        "keep_only": Field(_strings("If set, every other header is removed.")),
        "user_agent": Field(_str(choices=("keep", "remove", "generalize")), default="generalize"),
    }
)

ROUTE = Obj(
    {
        "name": Field(_str("Shown in metrics and logs."), required=True),
        "listener": Field(_str("Listener name; default: every listener.")),
        "match": Field(MATCH, default=MATCH.defaults),
        "upstream": Field(
            _str("Base URL requests are forwarded to.", check=_check_url), required=True
        ),
        "strip_prefix": Field(Scalar("bool"), default=False),
        "category": Field(_str(), required=True),
        "mode": Field(_str(choices=MODES)),
        "format": Field(_str(choices=FORMATS), default="auto"),
        "policy": Field(_str()),
        "on_unparseable": Field(_str(choices=("drop", "reject")), default="drop"),
        "attachments": Field(_str(choices=("drop", "keep", "keep-scrub-filename")), default="drop"),
        "drop_response": Field(DROP_RESPONSE, default=DROP_RESPONSE.defaults),
        "headers": Field(HEADERS, default=HEADERS.defaults),
        "tls_ca_file": Field(_str("CA bundle to verify the upstream with.")),
        "on_upstream_failure": Field(
            _str(
                "spool: keep scrubbed requests in the spool and answer the client like a drop "
                "(needs spool.directory); relay: pass the upstream's failure to the client.",
                choices=("spool", "relay"),
            ),
            default="spool",
        ),
    }
)

RELOAD = Obj(
    {
        "watch": Field(Scalar("bool"), default=False),
        "interval": Field(Scalar("duration", minimum=0.05), default=2.0),
    },
    doc="Reload when the settings file's content changes (e.g. a Kubernetes ConfigMap).",
)

SPOOL = Obj(
    {
        "directory": Field(
            _str(
                "Where scrubbed requests wait while their upstream fails (created 0700, files "
                "0600); unset: no spool, upstream failures are relayed to the client."
            )
        ),
        "max_bytes": Field(Scalar("size", minimum=1024), default=256 * 2**20),
        "on_full": Field(
            _str(
                "reject-new: a request that does not fit is not spooled (the client gets the "
                "upstream's error, or 503); drop-oldest: evict the oldest spooled requests.",
                choices=("reject-new", "drop-oldest"),
            ),
            default="reject-new",
        ),
        "max_age": Field(
            Scalar("duration", minimum=1, doc="Spooled requests older than this are dropped."),
            default=72 * 3600.0,
        ),
        "fsync": Field(
            Scalar(
                "bool",
                doc="fsync each spooled request (and its directory) before the client is "
                "answered; false trades durability across power loss for speed.",
            ),
            default=True,
        ),
        "retry_initial": Field(Scalar("duration", minimum=0.01), default=1.0),
        "retry_max": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="Upper bound of the exponential backoff and of an upstream's Retry-After.",
            ),
            default=300.0,
        ),
    },
    doc="Store and forward: scrubbed requests whose upstream is unreachable, times out or "
    "answers 429/5xx are kept on disk and retried in order per route. Read at start.",
)

AUDIT = Obj(
    {
        "file": Field(_str("JSON-lines audit log; unset: no audit log.")),
        "max_bytes": Field(Scalar("size", minimum=1024), default=10 * 2**20),
        "backups": Field(Scalar("int", minimum=0), default=5),
    },
    doc="Per forwarded request: fields sent and rules applied (paths and counts, no values).",
)

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def split_destination(text: str) -> tuple[str, int]:
    """``host[:port]`` → (lowercase host without brackets, port; 443 when left out).
    Hosts are DNS names (``*.domain`` for every subdomain), IPv4 or ``[IPv6]`` addresses.
    Raises ``ValueError`` saying what is wrong."""
    text = text.strip().lower()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("expected host[:port], with IPv6 addresses in brackets")
        port_text = rest[1:] if rest else None
        _check_ipv6(host)
    else:
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
        _check_hostname(host.removeprefix("*."))
    if port_text is None:
        return host, 443
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("the port must be a number from 1 to 65535")
    return host, int(port_text)


def _check_hostname(host: str) -> None:
    labels = host.split(".")
    if not host or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError("expected a host name (letters, digits, '-' and dots) or '*.domain'")


def _check_ipv6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError("expected an IPv6 address inside the brackets") from None


def _check_destination(value: str) -> str | None:
    try:
        split_destination(value)
    except ValueError as error:
        return str(error)
    return None


DESTINATION = Obj(
    {
        "destination": Field(
            _str(
                "host[:port] a client may CONNECT to (port 443 when left out); "
                "'*.example.com' allows every subdomain of example.com.",
                check=_check_destination,
            ),
            required=True,
        ),
        "action": Field(
            _str(
                "tunnel: relay the encrypted bytes, uninspected; intercept: decrypt with a "
                "certificate minted by ca_cert_file and serve the requests through the routes.",
                choices=("tunnel", "intercept"),
            ),
            required=True,
        ),
    }
)

FORWARD_PROXY = Obj(
    {
        "listener": Field(
            _str("The listener clients use as HTTP_PROXY/HTTPS_PROXY (plain HTTP)."),
            required=True,
        ),
        "destinations": Field(
            ListOf(DESTINATION, doc="CONNECT allowlist; the first entry that matches wins."),
            default=list,
        ),
        "ca_cert_file": Field(
            _str("PEM CA certificate that signs intercepted hosts' certificates.")
        ),
        "ca_key_file": Field(_str("PEM private key (unencrypted) of that CA.")),
        "max_tunnels": Field(
            Scalar("int", minimum=1, doc="Tunnelled connections open at once (503 beyond)."),
            default=1024,
        ),
        "idle_timeout": Field(
            Scalar(
                "duration",
                minimum=0.001,
                doc="A tunnel, or a connection that has not finished its first request head, "
                "is closed after this long without traffic.",
            ),
            default=300.0,
        ),
    },
    doc="Forward-proxy mode (off when absent): absolute-form requests are routed by host, "
    "CONNECT is allowed only to listed destinations.",
)

MAX_WORKERS = 256


def _check_workers(value: Any) -> str | None:
    if value == "auto" or (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WORKERS
    ):
        return None
    return f"expected auto or a number of processes from 1 to {MAX_WORKERS}, found {value!r}"


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, not the whole machine)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


SETTINGS = Obj(
    {
        "version": Field(Scalar("int", minimum=1, maximum=1), required=True),
        "workers": Field(
            Scalar(
                "any",
                doc="Processes serving the listeners (sharing their ports); auto: one per CPU.",
                check=_check_workers,
            ),
            default="auto",
        ),
        "listeners": Field(ListOf(LISTENER, min_items=1), required=True),
        "admin": Field(ADMIN, default=ADMIN.defaults),
        "hashing": Field(HASHING, default=HASHING.defaults),
        "organization": Field(ORGANIZATION, default=ORGANIZATION.defaults),
        "detectors": Field(DETECTORS, default=DETECTORS.defaults),
        "limits": Field(LIMITS, default=LIMITS.defaults),
        "audit": Field(AUDIT, default=AUDIT.defaults),
        "spool": Field(SPOOL, default=SPOOL.defaults),
        "reload": Field(RELOAD, default=RELOAD.defaults),
        "categories": Field(MapOf(_str(choices=MODES)), default=dict),
        "policies": Field(MapOf(POLICY), default=dict),
        "routes": Field(ListOf(ROUTE, min_items=1), required=True),
        "forward_proxy": Field(FORWARD_PROXY),
    }
)


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One configured route, with its effective mode and compiled plan."""

    name: str
    listener: str | None
    host: str | None
    path_prefix: str
    path_regex: str | None
    methods: frozenset[str]
    upstream: str
    strip_prefix: bool
    category: str
    mode: str
    format: str
    policy: str | None
    plan: Plan | None
    on_unparseable: str
    attachments: str
    drop_status: int
    drop_body: bytes
    drop_content_type: str
    remove_headers: frozenset[str]
    keep_only_headers: frozenset[str] | None
    user_agent: str
    tls_ca_file: str | None
    on_upstream_failure: str


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int
    max_decoded_bytes: int
    max_ratio: int
    max_depth: int
    max_values: int
    max_parts: int
    max_header_count: int
    max_header_bytes: int
    max_concurrent_requests: int
    upstream_connect_timeout: float
    upstream_timeout: float
    max_buffered_bytes: int
    client_header_timeout: float
    client_body_timeout: float
    drain_timeout: float


@dataclass(frozen=True, slots=True)
class Spool:
    directory: str | None
    max_bytes: int
    on_full: str
    max_age: float
    fsync: bool
    retry_initial: float
    retry_max: float


@dataclass(frozen=True, slots=True)
class Reload:
    watch: bool
    interval: float


@dataclass(frozen=True, slots=True)
class Audit:
    file: str | None
    max_bytes: int
    backups: int


@dataclass(frozen=True, slots=True)
class Admin:
    host: str
    port: int
    token: str | None


@dataclass(frozen=True, slots=True)
class Destination:
    """One allowlisted CONNECT destination. ``host`` is exact or ``*.domain``."""

    host: str
    port: int
    action: str

    @property
    def label(self) -> str:
        """``host:port`` as shown in metrics and logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ForwardProxy:
    listener: str
    destinations: tuple[Destination, ...]
    authority: CertificateAuthority | None
    max_tunnels: int
    idle_timeout: float


@dataclass(frozen=True)
class LoadedSettings:
    """A fully valid settings file and everything compiled from it."""

    file: str
    digest: str
    listeners: tuple[Listener, ...]
    admin: Admin
    audit: Audit
    spool: Spool
    reload: Reload
    routes: tuple[Route, ...]
    limits: Limits
    categories: Mapping[str, str]
    plans: Mapping[str, Plan]
    engine: EngineContext
    raw: Mapping[str, Any]
    forward_proxy: ForwardProxy | None = None
    workers: int = 1

    def route(self, name: str) -> Route | None:
        return next((route for route in self.routes if route.name == name), None)

    def summary(self) -> str:
        rules = sum(len(self.raw["policies"][name]["rules"]) for name in self.plans)
        return (
            f"{self.file}: OK — {len(self.listeners)} listener(s), {len(self.routes)} route(s), "
            f"{len(self.plans)} polic{'y' if len(self.plans) == 1 else 'ies'} with {rules} rule(s)"
        )


class SettingsError(ValueError):
    """Every problem found in a settings file."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> LoadedSettings:
    """Read, validate and compile a settings file (raises :class:`SettingsError`)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(
            [Problem(file, 1, 1, "", f"cannot read settings file ({_os_reason(error)})")]
        ) from None
    return parse_settings(text, file, os.environ if environ is None else environ)


def parse_settings(text: str, file: str, environ: Mapping[str, str]) -> LoadedSettings:
    """Validate and compile settings given as text; ``file`` names it in messages."""
    tree, syntax_problem = load_yaml_tree(text, file)
    if syntax_problem is not None:
        raise SettingsError([syntax_problem])
    checker = Checker(file, environ)
    if tree is None:
        raise SettingsError([Problem(file, 1, 1, "", "the settings file is empty")])
    raw = SETTINGS.convert(tree, "", checker)
    if raw is None:
        raise SettingsError(checker.problems)
    # Cross-references and compilation run even after schema problems, so one pass
    # reports everything; a file with any problem never loads.
    builder = _Builder(raw, checker.marks, environ, Path(file).parent)
    settings = builder.build(file, hashlib.sha256(text.encode()).hexdigest())
    problems = sorted(
        [*checker.problems, *builder.problems], key=lambda problem: (problem.line, problem.column)
    )
    if problems:
        raise SettingsError(problems)
    assert settings is not None
    return settings


class _Builder:
    """Turns checked raw settings into the model, adding cross-reference problems."""

    def __init__(
        self, raw: dict[str, Any], marks: Marks, environ: Mapping[str, str], base: Path
    ) -> None:
        self.raw = raw
        self.marks = marks
        self.environ = environ
        self.base = base
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(self.marks.problem(path, message))

    def build(self, file: str, digest: str) -> LoadedSettings | None:
        raw = self.raw
        engine = EngineContext(self._engine_spec())
        plans = self._plans(engine)
        categories = self._categories()
        listeners = self._listeners()
        routes = self._routes(categories, plans, {listener.name for listener in listeners})
        admin = self._admin()
        forward_proxy = self._forward_proxy(listeners)
        workers = self._workers(listeners)
        if self.problems:
            return None
        return LoadedSettings(
            file=file,
            digest=digest,
            listeners=listeners,
            admin=admin,
            audit=self._audit(),
            spool=self._spool(),
            reload=Reload(
                watch=self.raw["reload"]["watch"], interval=self.raw["reload"]["interval"]
            ),
            routes=routes,
            limits=Limits(**raw["limits"]),
            categories=MappingProxyType(categories),
            plans=MappingProxyType(plans),
            engine=engine,
            raw=raw,
            forward_proxy=forward_proxy,
            workers=workers,
        )

    # --- engine ------------------------------------------------------------------------

    def _engine_spec(self) -> EngineSpec:
        limits = self.raw["limits"]
        detectors = self.raw["detectors"]
        detector_settings = DetectorSettings(
            **(
                {"phone_regions": tuple(detectors["phone_regions"])}
                if detectors.get("phone_regions")
                else {}
            ),
            sensitive_query_params=tuple(detectors.get("sensitive_query_params") or ()),
        )
        return EngineSpec(
            hashing=self._hashing(),
            organization=self._organization(),
            detectors=detector_settings,
            limits=EngineLimits(max_depth=limits["max_depth"], max_values=limits["max_values"]),
        )

    def _hashing(self) -> HashingSpec:
        hashing = self.raw["hashing"]
        key = self._secret(hashing, "hashing")
        env_name = hashing.get("key_env")
        hint = (
            f"environment variable {env_name} is not set"
            if env_name and not hashing.get("key_file")
            else "set hashing.key_file or hashing.key_env"
        )
        return HashingSpec(
            key=key,
            missing_hint=hint,
            algorithm=hashing["algorithm"],
            length=hashing["length"],
            prefix=hashing["prefix"],
        )

    def _secret(self, section: Mapping[str, Any], where: str) -> bytes | None:
        """Read a secret named by ``key_file``/``token_file`` or ``key_env``/``token_env``."""
        prefix = "key" if where == "hashing" else "token"
        file_name, env_name = section.get(f"{prefix}_file"), section.get(f"{prefix}_env")
        if file_name:
            try:
                return (self.base / file_name).read_bytes().rstrip(b"\r\n")
            except OSError as error:
                self.problem(
                    f"{where}.{prefix}_file", f"cannot read {file_name} ({_os_reason(error)})"
                )
                return None
        if env_name:
            value = self.environ.get(env_name)
            return value.encode() if value else None
        return None

    def _organization(self) -> OrganizationSpec:
        org = self.raw["organization"]
        entries: dict[str, list[str]] = {
            kind: list(org[kind])
            for kind in ("names", "domains", "hostnames", "cidrs", "base_urls")
        }
        for index, file_name in enumerate(org["files"]):
            self._read_dictionary_file(file_name, f"organization.files[{index}]", entries)
        return OrganizationSpec(**{kind: tuple(values) for kind, values in entries.items()})

    def _read_dictionary_file(
        self, file_name: str, where: str, entries: dict[str, list[str]]
    ) -> None:
        try:
            lines = (self.base / file_name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            self.problem(where, f"cannot read {file_name} ({_os_reason(error)})")
            return
        kind = None
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if stripped.startswith("#"):
                header = stripped.lstrip("#").strip().lower()
                if header in entries:
                    kind = header
                continue
            if not stripped:
                continue
            if kind is None:
                self.problem(
                    where,
                    f"{file_name}:{number}: entry before any '# names'/'# domains'/... header",
                )
                return
            entries[kind].append(stripped)

    def _plans(self, engine: EngineContext) -> dict[str, Plan]:
        for error in engine.errors:
            self.problem(error.where, error.message)
        plans: dict[str, Plan] = {}
        for name, policy in self.raw["policies"].items():
            if policy is None:
                continue
            where = f"policies.{name}"
            rules = tuple(
                self._rule_spec(rule, f"{where}.rules[{index}]")
                for index, rule in enumerate(policy["rules"])
            )
            try:
                plans[name] = compile_policy(
                    PolicySpec(name=name, rules=rules, where=where), engine
                )
            except PlanErrors as errors:
                for error in errors.errors:
                    if error not in engine.errors:
                        self.problem(error.where, error.message)
        return plans

    @staticmethod
    def _rule_spec(rule: Mapping[str, Any], where: str) -> RuleSpec:
        common = {"id", "action", "select", "types", "ignore_case", "description"}
        params = {
            key: value for key, value in rule.items() if key not in common and value is not None
        }
        return RuleSpec(
            id=rule["id"],
            action=rule["action"],
            select=tuple(rule["select"]),
            params=MappingProxyType(params),
            types=tuple(rule["types"]),
            ignore_case=rule["ignore_case"],
            where=where,
        )

    # --- proxy side --------------------------------------------------------------------

    def _categories(self) -> dict[str, str]:
        categories = {name: "scrub" for name in BUILTIN_CATEGORIES}
        categories.update({name: mode for name, mode in self.raw["categories"].items() if mode})
        return categories

    def _listeners(self) -> tuple[Listener, ...]:
        listeners: list[Listener] = []
        for index, entry in enumerate(self.raw["listeners"]):
            if any(listener.name == entry["name"] for listener in listeners):
                self.problem(
                    f"listeners[{index}].name", f"listener name {entry['name']!r} is used twice"
                )
            tls = {name: str(self.base / path) for name, path in (entry.get("tls") or {}).items()}
            if tls:
                self._check_certificate(tls, f"listeners[{index}].tls")
            listeners.append(
                Listener(
                    entry["name"],
                    entry["host"],
                    entry["port"],
                    tls.get("cert_file"),
                    tls.get("key_file"),
                )
            )
        return tuple(listeners)

    def _workers(self, listeners: tuple[Listener, ...]) -> int:
        """``auto`` is one worker per CPU, or one when a listener asks for an ephemeral
        port (port 0): each process would get a different one."""
        workers = self.raw["workers"]
        ephemeral = next((listener for listener in listeners if listener.port == 0), None)
        if workers == "auto":
            return 1 if ephemeral else cpu_count()
        if workers > 1 and ephemeral:
            self.problem(
                "workers",
                f"{workers} workers cannot share listener {ephemeral.name!r} on port 0 (each "
                "would get a different ephemeral port); set a fixed port or workers: 1",
            )
        return workers

    def _check_certificate(self, tls: Mapping[str, str], where: str) -> None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                tls["cert_file"], tls["key_file"]
            )
        except (OSError, ssl.SSLError) as error:
            self.problem(where, f"cannot load the certificate and key ({_os_reason(error)})")

    def _audit(self) -> Audit:
        audit = self.raw["audit"]
        file = str(self.base / audit["file"]) if audit.get("file") else None
        return Audit(file=file, max_bytes=audit["max_bytes"], backups=audit["backups"])

    def _spool(self) -> Spool:
        spool = dict(self.raw["spool"])
        if spool.get("directory"):
            spool["directory"] = str(self.base / spool["directory"])
        if spool["retry_max"] < spool["retry_initial"]:
            self.problem("spool.retry_max", "must not be less than spool.retry_initial")
        return Spool(**{"directory": None, **spool})

    def _admin(self) -> Admin:
        admin = self.raw["admin"]
        token = self._secret(admin, "admin")
        if token is None and not _is_loopback(admin["host"]):
            self.problem(
                "admin.host", "an admin listener off loopback needs token_file or token_env"
            )
        return Admin(admin["host"], admin["port"], token.decode() if token else None)

    def _routes(
        self, categories: dict[str, str], plans: dict[str, Plan], listeners: set[str]
    ) -> tuple[Route, ...]:
        routes: list[Route] = []
        names: set[str] = set()
        for index, entry in enumerate(self.raw["routes"]):
            where = f"routes[{index}]"
            if entry["name"] in names:
                self.problem(f"{where}.name", f"route name {entry['name']!r} is used twice")
            names.add(entry["name"])
            route = self._route(entry, where, categories, plans, listeners)
            if route is not None:
                routes.append(route)
        return tuple(routes)

    def _route(
        self,
        entry: Mapping[str, Any],
        where: str,
        categories: dict[str, str],
        plans: dict[str, Plan],
        listeners: set[str],
    ) -> Route | None:
        category = entry["category"]
        if category not in categories:
            self.problem(
                f"{where}.category",
                f"unknown category {category!r}{_did_you_mean(category, categories)}",
            )
            return None
        if entry.get("listener") and entry["listener"] not in listeners:
            self.problem(
                f"{where}.listener",
                f"unknown listener {entry['listener']!r}"
                f"{_did_you_mean(entry['listener'], listeners)}",
            )
        mode = entry.get("mode") or categories[category]
        policy = entry.get("policy")
        plan = None
        if policy is not None:
            if policy not in self.raw["policies"]:
                self.problem(
                    f"{where}.policy",
                    f"unknown policy {policy!r}{_did_you_mean(policy, self.raw['policies'])}",
                )
            plan = plans.get(policy)
        elif mode == "scrub":
            self.problem(
                where, f"route {entry['name']!r} scrubs (category {category!r}) but names no policy"
            )
        match = entry["match"]
        headers = entry["headers"]
        drop = entry["drop_response"]
        return Route(
            name=entry["name"],
            listener=entry.get("listener"),
            host=(match.get("host") or None) and match["host"].lower(),
            path_prefix=match.get("path_prefix") or "/",
            path_regex=match.get("path_regex"),
            methods=frozenset(method.upper() for method in match.get("methods") or ()),
            upstream=entry["upstream"].rstrip("/"),
            strip_prefix=entry["strip_prefix"],
            category=category,
            mode=mode,
            format=entry["format"],
            policy=policy,
            plan=plan,
            on_unparseable=entry["on_unparseable"],
            attachments=entry["attachments"],
            drop_status=drop["status"],
            drop_body=drop["body"].encode(),
            drop_content_type=drop["content_type"],
            remove_headers=frozenset(name.lower() for name in headers["remove"]),
            keep_only_headers=frozenset(name.lower() for name in headers["keep_only"])
            if headers.get("keep_only")
            else None,
            user_agent=headers["user_agent"],
            tls_ca_file=str(self.base / entry["tls_ca_file"]) if entry.get("tls_ca_file") else None,
            on_upstream_failure=entry["on_upstream_failure"],
        )

    # --- forward proxy ------------------------------------------------------------------

    def _forward_proxy(self, listeners: tuple[Listener, ...]) -> ForwardProxy | None:
        section = self.raw.get("forward_proxy")
        if not section:
            return None
        self._check_forward_listener(section["listener"], listeners)
        destinations = self._destinations(section["destinations"])
        return ForwardProxy(
            listener=section["listener"],
            destinations=destinations,
            authority=self._certificate_authority(section, destinations),
            max_tunnels=section["max_tunnels"],
            idle_timeout=section["idle_timeout"],
        )

    def _check_forward_listener(self, name: str, listeners: tuple[Listener, ...]) -> None:
        listener = next((listener for listener in listeners if listener.name == name), None)
        if listener is None:
            known = [listener.name for listener in listeners]
            self.problem(
                "forward_proxy.listener", f"unknown listener {name!r}{_did_you_mean(name, known)}"
            )
        elif listener.cert_file:
            self.problem(
                "forward_proxy.listener",
                f"listener {name!r} serves TLS; a forward-proxy listener takes plain HTTP "
                "(clients reach HTTPS destinations through CONNECT)",
            )

    def _destinations(self, entries: list[Mapping[str, Any]]) -> tuple[Destination, ...]:
        destinations: list[Destination] = []
        for index, entry in enumerate(entries):
            host, port = split_destination(entry["destination"])
            destination = Destination(host, port, entry["action"])
            if any(known.label == destination.label for known in destinations):
                self.problem(
                    self._destination_path(index, ".destination"),
                    f"destination {destination.label} is listed twice",
                )
            destinations.append(destination)
        return tuple(destinations)

    def _destination_path(self, index: int, key: str) -> str:
        """The settings path of destination ``index``; only the list's path when broken
        entries were left out, since indexes after them no longer match the file."""
        path = "forward_proxy.destinations"
        items = self.raw["forward_proxy"]["destinations"]
        written = sum(1 for place in self.marks.places if re.fullmatch(rf"{path}\[\d+\]", place))
        return f"{path}[{index}]{key}" if written == len(items) else path

    def _certificate_authority(
        self, section: Mapping[str, Any], destinations: tuple[Destination, ...]
    ) -> CertificateAuthority | None:
        cert_file, key_file = section.get("ca_cert_file"), section.get("ca_key_file")
        if not cert_file or not key_file:
            if cert_file:
                self.problem("forward_proxy.ca_cert_file", "ca_cert_file needs ca_key_file too")
            if key_file:
                self.problem("forward_proxy.ca_key_file", "ca_key_file needs ca_cert_file too")
            for index, destination in enumerate(destinations):
                if destination.action == "intercept":
                    self.problem(
                        self._destination_path(index, ".action"),
                        f"intercept ({destination.label}) needs forward_proxy.ca_cert_file and "
                        "ca_key_file (the CA that signs the minted certificates)",
                    )
            return None
        try:
            return load_certificate_authority(str(self.base / cert_file), str(self.base / key_file))
        except CertificateError as error:
            self.problem("forward_proxy.ca_cert_file", str(error))
            return None


def _did_you_mean(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _os_reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or type(error).__name__
