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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from filters.actions import parse_hash_key
from filters.compile import EngineContext, PlanErrors, compile_policy
from filters.detectors.registry import BUILTIN_NAMES
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
    hide_environment_values,
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


def _checked_strings(check: Callable[[str], str | None], doc: str = "") -> ListOf:
    return ListOf(_str(check=check), doc=doc, single=True)


def _check_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a port that is not a number in 0-65535
    except ValueError:
        return "expected an http:// or https:// URL with a valid host and port"
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return "expected an http:// or https:// URL with a host"
    if parts.query or parts.fragment:
        return "an upstream URL cannot carry a query or fragment"
    return None


def _check_region(value: str) -> str | None:
    if value.upper() in phonenumbers.SUPPORTED_REGIONS:
        return None
    return f"unknown region code {value!r} (expected an ISO 3166 code like US, GB or DE)"


_QUERY_NAME_FORBIDDEN = frozenset("=&#;? \t")


def _check_query_param(value: str) -> str | None:
    if value and not _QUERY_NAME_FORBIDDEN.intersection(value):
        return None
    return "a query parameter name must be non-empty, without = & # ; ? or spaces"


def _check_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as error:
        return f"invalid regular expression ({error.msg})"
    return None


LISTENER = Obj(
    {
        "name": Field(
            _str(
                "Unique name: routes' `listener` and `forward_proxy.listener` refer to it, and "
                "it is the `listener` label of unrouted-request metrics."
            ),
            required=True,
        ),
        "host": Field(
            _str(
                "Address to bind. The default serves this host only; `0.0.0.0` (or `::`) "
                "accepts other hosts too: then let only the product reach the port, and use "
                "`tls` unless the network between them is trusted (raw telemetry crosses it)."
            ),
            default="127.0.0.1",
        ),
        "port": Field(
            Scalar(
                "int",
                minimum=0,
                maximum=65535,
                doc="TCP port. `0` takes any free port at each start (for tests; several "
                "workers cannot share it).",
            ),
            required=True,
        ),
        "tls": Field(
            Obj(
                {
                    "cert_file": Field(
                        _str("PEM certificate chain: the server certificate, then intermediates."),
                        required=True,
                    ),
                    "key_file": Field(
                        _str(
                            "Unencrypted PEM private key of that certificate; keep it readable "
                            "by the scrubgate user only."
                        ),
                        required=True,
                    ),
                },
                doc="Serve HTTPS (TLS 1.2 or newer). The files are checked at load and read "
                "again on every reload, so a renewed certificate needs no restart; turning TLS "
                "on or off does. Not allowed on the forward-proxy listener.",
            )
        ),
    }
)

ADMIN = Obj(
    {
        "host": Field(
            _str(
                "Address of the admin listener. Keep it on loopback (`127.x.x.x`, `::1`, "
                "`localhost`): any other address requires `token_file` or `token_env`, and "
                "`/metrics` and the health endpoints are open to whoever reaches the port."
            ),
            default="127.0.0.1",
        ),
        "port": Field(
            Scalar(
                "int",
                minimum=0,
                maximum=65535,
                doc="TCP port of the admin listener; `0` takes any free port.",
            ),
            default=9090,
        ),
        "token_file": Field(
            _str(
                "File holding the admin token (trailing newlines stripped). With a token, "
                "`POST /-/reload` and `GET /-/config` need `Authorization: Bearer <token>` "
                "(compared in constant time); `/metrics`, `/-/healthy` and `/-/ready` stay "
                "open. Used instead of `token_env` when both are set; read again on reload."
            )
        ),
        "token_env": Field(
            _str(
                "Name of an environment variable holding the admin token, used when "
                "`token_file` is not set. The token itself never belongs in this file."
            )
        ),
    },
    doc="The admin listener: `/metrics` (Prometheus), `/-/healthy`, `/-/ready`, "
    "`POST /-/reload` and `GET /-/config` (the effective settings, secrets masked). With "
    "several workers the supervisor process serves it. `host` and `port` are read at start; "
    "the token follows reloads.",
)

HASHING = Obj(
    {
        "algorithm": Field(
            _str(
                "`hmac-sha256`: HMAC-SHA256, cryptographic: without the key, nobody can "
                "reverse a hashed id by trying likely values. `xxh3-128`: keyed xxh3, faster "
                "but NOT cryptographic (no brute-force resistance): only for pseudonymous "
                "joins inside a trusted pipeline.",
                choices=("hmac-sha256", "xxh3-128"),
            ),
            default="hmac-sha256",
        ),
        "key_file": Field(
            _str(
                "File holding the secret hash key: its bytes, trailing newlines stripped, at "
                "least 16 of them, or `hex:` followed by hex digits for a binary key "
                "(Python's `secrets.token_hex(32)` makes a good key). Used "
                "instead of `key_env` when both are set. Keep it 0600 and away from the "
                "vendor: with the key, hashed ids can be reversed by dictionary attack."
            )
        ),
        "key_env": Field(
            _str(
                "Name of an environment variable holding the secret hash key (at least 16 "
                "bytes, or `hex:` and hex digits), used when `key_file` is not set. There "
                "is no default name; `config.example.yaml` uses `SCRUBGATE_HASH_KEY`."
            )
        ),
        "length": Field(
            Scalar(
                "int",
                minimum=8,
                maximum=64,
                doc="Hex characters of the digest kept: 8 to 64 with `hmac-sha256`, 8 to 32 "
                "with `xxh3-128`. 32 characters are 128 bits; shorter hashes collide sooner.",
            ),
            default=32,
        ),
        "prefix": Field(
            _str("Text put in front of every hash, e.g. `h:` to mark values as hashed."),
            default="",
        ),
    },
    doc="Keyed hashing for `hash` and `sample` rules. The key is read from `key_file` or "
    "`key_env`, never written in this file, and is needed only when a policy hashes or "
    "samples. Use the same key, algorithm and length on every replica so hashed ids join "
    "across events; changing any of them changes every hash. Follows reloads.",
)

ORGANIZATION = Obj(
    {
        "names": Field(
            _strings("Organization names, matched as whole words (`Acme`, not `Acmeville`)."),
            default=list,
        ),
        "domains": Field(
            _strings(
                "Domains; every subdomain matches too and the whole host name is replaced "
                "(`corp.example.net` covers `jira.corp.example.net`, not "
                "`notcorp.example.net`)."
            ),
            default=list,
        ),
        "hostnames": Field(
            _strings(
                "Host names, matched between dots or other characters that cannot be part "
                "of a name (`build-01` in `build-01.internal`, not in `build-01-old`)."
            ),
            default=list,
        ),
        "cidrs": Field(
            _strings(
                "Address ranges like `10.20.0.0/16` or `fd00::/8`: IPv4 and IPv6 addresses "
                "inside them are replaced."
            ),
            default=list,
        ),
        "base_urls": Field(
            _strings(
                "Base URLs of the product install (`https://jira.corp.example.net`), matched "
                "at the start of a URL; the path after them stays. A trailing `/` is ignored."
            ),
            default=list,
        ),
        "files": Field(
            _strings(
                "More entries, from files with one entry per line under `# names`, "
                "`# domains`, `# hostnames`, `# cidrs` or `# base_urls` header lines; other "
                "lines starting with `#` are comments, and an entry before any header is an "
                "error. Read again on every reload."
            ),
            default=list,
        ),
    },
    doc="The organization dictionary: what identifies your organization is replaced by "
    "`[org]` wherever it appears inside a string, by every `redact` rule with "
    "`organization: true` (the default). Matching is case-insensitive; entries need at "
    "least two characters. Follows reloads.",
)

DETECTORS = Obj(
    {
        "phone_regions": Field(
            _checked_strings(
                _check_region,
                "ISO 3166 region codes (`US`, `GB`, ...) that phone numbers written without "
                "`+country code` are validated against; numbers with `+` are recognized by "
                "their calling code whatever this says. Unset or empty: US, GB, DE, FR, IN, "
                "BR, JP, AU, CA. More regions find more numbers, and more false positives.",
            )
        ),
        "sensitive_query_params": Field(
            _checked_strings(
                _check_query_param,
                "More query parameter names (case-insensitive) whose values the "
                "`sensitive_query_params` detector replaces with `[redacted]` "
                "(`?invite=abc` → `?invite=[redacted]`), added to the built-in ones (`token`, "
                "`access_token`, `password`, `secret`, `api_key`, `key`, `sig`, `session`, "
                "`code`, `email` and more). Names cannot hold `=`, `&`, `#`, `;`, `?` or spaces.",
            )
        ),
    },
    doc="Options of the built-in detectors that `redact` rules run. Follows reloads.",
)

LIMITS = Obj(
    {
        "max_body_bytes": Field(
            Scalar(
                "size",
                minimum=1,
                doc="Largest request body as received (before decompression). A larger "
                "declared Content-Length is answered 413 at once; a chunked body is answered "
                "413 as soon as it passes the limit, and the connection is closed. Forward-"
                "mode routes read a body of up to 1 MiB, or a chunked one (within this "
                "limit), whole before sending it with its length, so an upstream never sees "
                "a body cut off; larger bodies of declared length are streamed.",
            ),
            default=10 * 2**20,
        ),
        "max_decoded_bytes": Field(
            Scalar(
                "size",
                minimum=1,
                doc="Largest body after undoing its Content-Encoding layers (gzip, deflate, "
                "br, zstd; also the deflate inside a Sentry store body): decompression stops "
                "at the cap and the request is answered 413. About the most memory one "
                "decompression may take.",
            ),
            default=50 * 2**20,
        ),
        "max_ratio": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Largest decompressed-to-compressed size ratio: a body may decode to at "
                "most `min(max_decoded_bytes, its size * max_ratio)` bytes, which stops "
                "decompression bombs early; beyond it: 413.",
            ),
            default=100,
        ),
        "max_depth": Field(
            Scalar(
                "int",
                minimum=1,
                maximum=250,
                doc="Deepest nesting (levels of arrays and objects, the document itself "
                "counting as one) of a scrubbed document, wherever its rules reach; a deeper "
                "document is not forwarded and the route's `on_unparseable` answers.",
            ),
            default=128,
        ),
        "max_values": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Most values (array elements plus object members, counted over the "
                "whole parsed document) in one scrubbed document; a larger one is not "
                "forwarded and the route's `on_unparseable` answers.",
            ),
            default=1_000_000,
        ),
        "max_parts": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Most form fields or query parameters, multipart parts, or Sentry "
                "envelope items in one request; beyond it the route's `on_unparseable` "
                "answers.",
            ),
            default=1000,
        ),
        "max_header_count": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Most headers a routed request may carry; beyond it: 431, nothing is "
                "forwarded.",
            ),
            default=100,
        ),
        "max_header_bytes": Field(
            Scalar(
                "size",
                minimum=256,
                doc="Longest request line or header line (beyond it the HTTP parser answers "
                "400 or 431), and longest CONNECT request head on the forward-proxy listener "
                "(431). Read at start, except for CONNECT heads.",
            ),
            default=16 * 2**10,
        ),
        "max_concurrent_requests": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Requests in flight at once, per process (per worker); beyond it new "
                "requests get 503 with `Retry-After: 1`. Also the size of the upstream "
                "connection pool, which is set at start.",
            ),
            default=1024,
        ),
        "upstream_connect_timeout": Field(
            Scalar(
                "duration",
                minimum=0.001,
                doc="Time to open a connection to an upstream, or to a tunnelled CONNECT "
                "destination. Past it the client gets 504, or the scrubbed request is "
                "spooled if its route spools.",
            ),
            default=5.0,
        ),
        "upstream_timeout": Field(
            Scalar(
                "duration",
                minimum=0.001,
                doc="Time an upstream request may take in all: connecting, sending the body "
                "and the upstream's answer. Past it the client gets 504, or the scrubbed "
                "request is spooled if its route spools.",
            ),
            default=30.0,
        ),
        "transform_memo_entries": Field(
            Scalar(
                "int",
                minimum=0,
                doc="Results each `hash` and `generalize` rule remembers, for input strings "
                "up to 256 characters, so repeated ids and URLs cost one lookup. The memo "
                "holds recent raw inputs in process memory until it fills (then it empties) "
                "or the settings reload; 0 turns it off, at some speed.",
            ),
            default=2048,
        ),
        "max_buffered_bytes": Field(
            Scalar(
                "size",
                minimum=1024,
                doc="Request bodies held in memory at once, per process (per worker); only "
                "scrub routes buffer bodies. A request whose body would pass it gets 503 "
                "with `Retry-After: 1`.",
            ),
            default=256 * 2**20,
        ),
        "client_header_timeout": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="A connection without a complete request head this long after it opened or "
                "after its previous response is closed: the keep-alive idle timeout and the "
                "defence against slow clients (slowloris). Read at start.",
            ),
            default=15.0,
        ),
        "client_body_timeout": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="Time a client has to send the whole body of a request to a scrub route; "
                "then 408 and nothing is forwarded.",
            ),
            default=30.0,
        ),
        "drain_timeout": Field(
            Scalar(
                "duration",
                minimum=0,
                doc="On SIGTERM or SIGINT, listeners stop accepting at once and requests in "
                "flight get this long to finish; scrubbed requests still unsent then go to "
                "the spool. Read at start.",
            ),
            default=20.0,
        ),
    },
    doc="Bounds on what one request may cost, each with a defined answer: 413 for bodies, "
    "431 for headers, the route's `on_unparseable` for documents too deep or too large, 503 "
    "with Retry-After when the proxy is full, 408 for a body that stalls; counted in "
    "`scrubgate_payload_errors_total` or `scrubgate_overload_rejections_total`. They follow "
    "reloads unless they say otherwise.",
)

_RULE_COMMON = {
    "id": Field(
        _str(
            "Unique within the policy: the `rule` label of `scrubgate_rule_hits_total`, and what "
            "`scrubgate scrub --explain`, the access log and the audit log show."
        ),
        required=True,
    ),
    "action": Field(
        _str(
            "What the rule does; each action's own keys are listed in the sections below.",
            choices=ACTIONS,
        ),
        required=True,
    ),
    "select": Field(
        _strings(
            "Where the rule applies: selectors such as `a.b`, `a[*].b`, `a[2]`, `a.*.b` (`*`: "
            "any one key or list element), `**` (any depth, e.g. `**.email`) and key globs "
            'like `*password*`; a key holding dots is quoted: `a."b.c"`. A rule that changes '
            "values and selects an object or list applies to every value inside it. For "
            "`drop-event` and `sample`: the values tested. Default: `**`, everything."
        ),
        default=lambda: [EVERYTHING],
    ),
    "types": Field(
        ListOf(
            _str(choices=("string", "number", "boolean", "null", "object", "array")),
            doc="Only selected values of these JSON types are changed or removed; empty: any "
            "type. Rules that change values also apply inside selected objects and lists, so "
            "`types: [string]` limits them to the strings there. Not used by `drop-event`, "
            "`sample`, or `redact` on `**`.",
            single=True,
        ),
        default=list,
    ),
    "ignore_case": Field(
        Scalar(
            "bool",
            doc="Match key names and key globs of `select` (and of `keep`'s `fields`) "
            "case-insensitively.",
        ),
        default=False,
    ),
    "description": Field(_str("Free text for readers of the settings file; not used.")),
}

_PATTERN = Obj(
    {
        "name": Field(
            _str(
                "Detector name: the `detector` label of `scrubgate_detector_hits_total` and "
                "the default replacement `[name]`; must not be a built-in detector's name."
            ),
            required=True,
        ),
        "regex": Field(
            _str(
                "RE2 syntax (linear time: no backreferences or lookaround), ASCII only "
                "(`\\xHH` for other bytes), without anchors (`^`, `$`): values are scanned in "
                "one joined buffer. `.` and negated classes never run past the end of a JSON "
                "string."
            ),
            required=True,
        ),
        "replacement": Field(_str("Text that replaces each match; default `[name]`.")),
        "ignore_case": Field(Scalar("bool", doc="Match case-insensitively."), default=False),
    }
)

RULE = Tagged(
    tag="action",
    common=_RULE_COMMON,
    variants={
        "remove": {},
        "keep": {
            "fields": Field(
                _strings(
                    "Selectors, relative to each selected object, of the values that survive; "
                    "everything else inside the object is removed."
                ),
                required=True,
            )
        },
        "hash": {},
        "mask": {
            "keep_last": Field(
                Scalar("int", minimum=0, doc="Characters left visible at the end (at most 64)."),
                default=4,
            ),
            "keep_first": Field(
                Scalar("int", minimum=0, doc="Characters left visible at the start (at most 64)."),
                default=0,
            ),
            "char": Field(_str("The masking character: exactly one character."), default="*"),
        },
        "replace": {
            "with": Field(
                Scalar("any", doc="The constant: a string, number, boolean or null."),
                required=True,
            )
        },
        "redact": {
            "detectors": Field(
                _strings(
                    "Built-in detectors to run: "
                    + ", ".join(f"`{name}`" for name in BUILTIN_NAMES)
                    + "; `all` is every one of them except `uuid`."
                ),
                default="all",
            ),
            "patterns": Field(
                ListOf(
                    _PATTERN,
                    doc="Your own detectors, each a name and a regular expression, run "
                    "together with `detectors`.",
                ),
                default=list,
            ),
            "organization": Field(
                Scalar(
                    "bool",
                    doc="Also replace the entries of the `organization` dictionary with `[org]` "
                    "(when it has any).",
                ),
                default=True,
            ),
        },
        "truncate": {
            "max_length": Field(
                Scalar(
                    "int",
                    minimum=1,
                    doc="Longest string kept, in characters (code points), suffix included.",
                ),
                required=True,
            ),
            "suffix": Field(
                _str("Put at the end of cut strings; must be shorter than `max_length`."),
                default="…",
            ),
        },
        "generalize": {
            "kind": Field(
                _str(
                    "`ip`: the address's network (`192.0.2.77` → `192.0.2.0`). `url`: scheme, "
                    "host, port and path; userinfo, fragment and every query parameter not in "
                    "`allow_params` are dropped. `timestamp`: floored to the start of its "
                    "`bucket`, in the same format. `user_agent`: `Family major / OS` "
                    "(`Chrome 120 / Windows`).",
                    choices=("ip", "url", "timestamp", "user_agent"),
                ),
                required=True,
            ),
            "ipv4_prefix": Field(
                Scalar(
                    "int",
                    minimum=0,
                    maximum=32,
                    doc="`kind: ip`: network bits kept of IPv4 addresses (also of IPv4 inside "
                    "IPv6: mapped, 6to4 and NAT64 addresses).",
                ),
                default=24,
            ),
            "ipv6_prefix": Field(
                Scalar(
                    "int",
                    minimum=0,
                    maximum=128,
                    doc="`kind: ip`: network bits kept of IPv6 addresses.",
                ),
                default=48,
            ),
            "allow_params": Field(
                _strings(
                    "`kind: url`: query parameters kept with their values (names as written "
                    "or percent-decoded, case-sensitive)."
                ),
                default=list,
            ),
            "bucket": Field(
                _str(
                    "`kind: timestamp`: the precision kept. Weeks start on Monday; ISO 8601 "
                    "strings are floored in their own UTC offset, epoch numbers (seconds, "
                    "milliseconds, microseconds or nanoseconds) in UTC.",
                    choices=("minute", "hour", "day", "week", "month"),
                ),
                default="hour",
            ),
        },
        "drop-event": {
            "equals": Field(
                Scalar(
                    "any",
                    doc="Drop the event when a selected value equals this (booleans never "
                    "equal numbers).",
                )
            ),
            "in": Field(
                ListOf(
                    Scalar("any"), doc="Drop the event when a selected value equals one of these."
                )
            ),
            "matches": Field(
                _str(
                    "Drop the event when a selected string contains a match of this RE2 "
                    "pattern (searched, not anchored; `(?i)` ignores case)."
                )
            ),
            "exists": Field(
                Scalar(
                    "bool",
                    doc="`true`: drop events that have a selected value; `false`: drop events "
                    "that have none.",
                )
            ),
        },
        "sample": {
            "rate": Field(
                Scalar(
                    "float",
                    minimum=0,
                    maximum=1,
                    doc="Fraction of events kept, from 0 (none) to 1 (all).",
                ),
                required=True,
            ),
            "missing": Field(
                _str(
                    "What happens to an event with no selected string or number: `keep` it or "
                    "`drop` it.",
                    choices=("keep", "drop"),
                ),
                default="keep",
            ),
        },
    },
    doc="One rule: `select` says where, `action` what. Selectors are relative to each event "
    "of a batch (`batch[*]`, each NDJSON line, each Sentry item, each OTLP span, log record "
    "or data point) and also apply to the batch envelope.",
    variant_docs={
        "remove": "Delete the selected values: keys with everything inside them, or list elements.",
        "keep": "Allowlist: inside each selected object, keep only what `fields` selects and "
        "remove everything else.",
        "hash": "Replace strings and numbers with their keyed hash (see `hashing`; needs the "
        'key). A number hashes like its text (`123` and `"123"` give the same hash) and '
        "becomes a string; null and booleans stay as they are.",
        "mask": "Replace every character but the first `keep_first` and the last `keep_last` "
        "with `char`, keeping the length (`4111111111111111` → `************1111`). A value "
        "no longer than `keep_first + keep_last` is masked whole; numbers become masked "
        "strings; null and booleans stay.",
        "replace": "Replace every selected value (every value inside a selected object or "
        "list) with one constant.",
        "redact": "Replace what detectors find inside strings with a marker such as `[email]`, "
        "`[card]` or `[org]`, keeping the rest of the text. A rule selecting exactly `**` runs "
        "after the other rules, over the whole serialized document, keys "
        "included: the final safety net. Any other selection runs in rule order over the "
        "selected strings.",
        "truncate": "Cut strings longer than `max_length`, ending them with `suffix`; other "
        "values stay. Runs after every other field rule, on strings the detectors of the "
        "`redact` rules on `**` have already been through, so a cut cannot hide the rest "
        "of an e-mail address or a token from them.",
        "generalize": "Keep a coarse form of each value, by `kind`. A value the kind cannot "
        "read does not pass through: it becomes `[ip]` (ip), null (timestamp) or `Other` "
        "(user agent). Null stays null; `url` leaves non-strings as they are.",
        "drop-event": "Remove from its batch every event in which a selected value meets the "
        "one condition given: `equals`, `in`, `matches` or `exists`. Event filters run "
        "first, on the events as received. When every event of a request is dropped, nothing "
        "is sent and the client gets the route's `drop_response`.",
        "sample": "Keep a deterministic fraction of events: the first selected string or "
        "number of each event (selectors tried in the order written) is hashed with the "
        "hashing key, so a given user is kept or dropped in every request and on every "
        "replica. Needs the hash key.",
    },
)

POLICY = Obj(
    {
        "description": Field(_str("Free text for readers of the settings file; not used.")),
        "rules": Field(
            ListOf(
                RULE,
                min_items=1,
                doc="At least one rule. Order of work: `drop-event` and `sample` rules on the "
                "events as received; then the other rules in the order written; then "
                "`truncate` rules (on strings the `**` detectors have been through); then "
                "`redact` rules that select exactly `**`.",
            ),
            required=True,
        ),
    }
)

MATCH = Obj(
    {
        "host": Field(
            _str(
                "Host to match, without port, case-insensitive: the Host header, or on the "
                "forward-proxy listener the destination host. Unset: any host."
            )
        ),
        "path_prefix": Field(
            _str(
                "Path prefix, matched by whole segments: `/feedback` matches `/feedback` and "
                "`/feedback/x`, not `/feedbacks`; a prefix ending in `/` matches every path "
                "that starts with it. Paths are percent-decoded and normalized first; paths "
                "holding `..` never match."
            ),
            default="/",
        ),
        "path_regex": Field(
            _str(
                "Regular expression (Python syntax) searched in the normalized path; anchor "
                "it with `^` and `$`. Must match in addition to `path_prefix`.",
                check=_check_regex,
            )
        ),
        "methods": Field(
            ListOf(_str(), doc="HTTP methods (case-insensitive); empty: any method.", single=True),
            default=list,
        ),
    },
    doc="What a request must look like for this route: every condition given must hold. "
    "Left out: every request on the route's listener(s).",
)

DROP_RESPONSE = Obj(
    {
        "status": Field(
            Scalar("int", minimum=200, maximum=299, doc="HTTP status, 200 to 299."), default=200
        ),
        "body": Field(_str("Response body, as written."), default="{}"),
        "content_type": Field(_str("Content-Type of the answer."), default="application/json"),
    },
    doc="The success a client is answered when nothing of its request is sent now: mode "
    "`drop`, `on_unparseable: drop`, every event dropped by the policy, or the request went "
    "to the spool. Choose what the product's SDK accepts, so that it neither retries nor "
    "queues.",
)

HEADERS = Obj(
    {
        "remove": Field(
            _strings(
                "Request headers never forwarded (case-insensitive): by default cookies, "
                "client addresses and the referrer. A list given here replaces the default."
            ),
            default=lambda: list(DEFAULT_REMOVED_HEADERS),
        ),
        "keep_only": Field(
            _strings(
                "If set, only these request headers are forwarded (an allowlist; `remove` "
                "still applies)."
            )
        ),
        "user_agent": Field(
            _str(
                "`keep` the User-Agent header, `remove` it, or `generalize` it to "
                "`Family major / OS`.",
                choices=("keep", "remove", "generalize"),
            ),
            default="generalize",
        ),
    },
    doc="Header hygiene for requests sent upstream (in every mode but `drop` and `block`). "
    "Hop-by-hop headers are always removed; Host and Content-Length are set by scrubgate.",
)

ROUTE = Obj(
    {
        "name": Field(
            _str(
                "Unique name: the `route` label of metrics, shown in logs and the audit log. "
                "Spooled requests are delivered by route name: renaming a route drops its "
                "spooled requests (counted)."
            ),
            required=True,
        ),
        "listener": Field(
            _str("Only requests on this listener match; unset: requests on every listener.")
        ),
        "match": Field(MATCH, default=MATCH.defaults),
        "upstream": Field(
            _str(
                "Base URL (`http://` or `https://`, no query or fragment) requests go to, with "
                "the request path appended (`https://vendor.example/base` + `/v1/batch`). The "
                "Host header never chooses the destination. Userinfo "
                "(`https://user:password@host`) authenticates to the upstream, and the "
                "client's Authorization header is then not forwarded.",
                check=_check_url,
            ),
            required=True,
        ),
        "strip_prefix": Field(
            Scalar(
                "bool",
                doc="Remove `match.path_prefix` from the path before appending it to "
                "`upstream` (`/feedback/v1` → `/v1`).",
            ),
            default=False,
        ),
        "category": Field(
            _str(
                "`feedback`, `analytics`, `clickstream`, `crash`, `traces`, or a category "
                "declared in `categories`; its mode decides what happens to the route's "
                "requests unless `mode` is set."
            ),
            required=True,
        ),
        "mode": Field(
            _str(
                "Overrides the category's mode for this route: `forward` (sent as "
                "received; only headers are cleaned), `scrub` (the policy applies), `drop` "
                "(`drop_response`, nothing sent) or `block` (403, nothing sent).",
                choices=MODES,
            )
        ),
        "format": Field(
            _str(
                "Wire format of the bodies of a scrub route; `auto` tells per request from the "
                "Content-Type, the path and the first bytes. `text`: the whole body is one "
                "string, which only `redact` rules on `**` change. `binary`: never forwarded "
                "(answered per `on_unparseable`).",
                choices=FORMATS,
            ),
            default="auto",
        ),
        "policy": Field(
            _str("Name of the policy to apply; required when the route's mode is `scrub`.")
        ),
        "on_unparseable": Field(
            _str(
                "Answer of a scrub route to a body it cannot parse, or one past `max_depth`, "
                "`max_values` or `max_parts`: `drop` (`drop_response`, a success the client "
                "does not retry) or `reject` (400). Either way nothing is forwarded, and it "
                "is counted in `scrubgate_payload_errors_total`; size limits are always 413.",
                choices=("drop", "reject"),
            ),
            default="drop",
        ),
        "attachments": Field(
            _str(
                "Binary attachments on scrub routes (multipart file parts and non-UTF-8 "
                "parts, Sentry attachment and replay items): `drop` them, `keep` them as they "
                "are (NOT scrubbed), or `keep-scrub-filename` (content as is, file name "
                "through the detectors).",
                choices=("drop", "keep", "keep-scrub-filename"),
            ),
            default="drop",
        ),
        "drop_response": Field(DROP_RESPONSE, default=DROP_RESPONSE.defaults),
        "headers": Field(HEADERS, default=HEADERS.defaults),
        "tls_ca_file": Field(
            _str(
                "CA bundle (PEM) to verify an `https://` upstream with, instead of the "
                "system's CAs. Upstream TLS is always verified, version 1.2 or newer."
            )
        ),
        "on_upstream_failure": Field(
            _str(
                "When the upstream of a scrub route is unreachable, times out or answers "
                "408, 429 or 5xx: `spool` keeps the scrubbed request in the spool and answers "
                "the client like a drop (without a `spool.directory`, failures are relayed); "
                "`relay` passes the failure to the client (502, 504 or the upstream's answer).",
                choices=("spool", "relay"),
            ),
            default="spool",
        ),
    }
)

RELOAD = Obj(
    {
        "watch": Field(
            Scalar(
                "bool",
                doc="Poll the settings file and reload when its content changes; polling also "
                "sees the symlink swaps of Kubernetes ConfigMaps. A broken version is "
                "reported once. Read at start.",
            ),
            default=False,
        ),
        "interval": Field(
            Scalar("duration", minimum=0.05, doc="How often the file is polled."),
            default=2.0,
        ),
    },
    doc="Reload when the settings file's content changes (e.g. a Kubernetes ConfigMap). "
    "SIGHUP and `POST /-/reload` always work; a broken file never replaces working settings "
    "(the reload fails, is logged and counted, and the old settings stay).",
)

SPOOL = Obj(
    {
        "directory": Field(
            _str(
                "Where scrubbed requests wait while their upstream fails: one subdirectory "
                "per worker process (mode 0700), one file per request (0600). Unset or empty: "
                "no spool, upstream failures are relayed to the client."
            )
        ),
        "max_bytes": Field(
            Scalar(
                "size",
                minimum=1024,
                doc="Most bytes spooled per worker process; what happens beyond it is "
                "`on_full`. A request larger than this is never spooled.",
            ),
            default=256 * 2**20,
        ),
        "on_full": Field(
            _str(
                "reject-new: a request that does not fit is not spooled (the client gets the "
                "upstream's error, or 503); drop-oldest: evict the oldest spooled requests. "
                "Both are counted in `scrubgate_spool_drops_total`.",
                choices=("reject-new", "drop-oldest"),
            ),
            default="reject-new",
        ),
        "max_age": Field(
            Scalar(
                "duration",
                minimum=1,
                doc="Spooled requests older than this are dropped instead of delivered "
                "(counted in `scrubgate_spool_drops_total`).",
            ),
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
        "retry_initial": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="Wait before retrying a route's oldest request after its first failure; "
                "it doubles after each further failure, up to `retry_max`, with jitter "
                "(each wait is between half and all of the current delay).",
            ),
            default=1.0,
        ),
        "retry_max": Field(
            Scalar(
                "duration",
                minimum=0.01,
                doc="Longest wait between retries, and the most of an upstream's Retry-After "
                "that is honoured; not less than `retry_initial`.",
            ),
            default=300.0,
        ),
    },
    doc="Store and forward: when the upstream of a scrub route is unreachable, times out or "
    "answers 408, 429 or 5xx, the scrubbed request (never a raw one) is written here, the "
    "client gets the route's `drop_response`, and delivery is retried with backoff, in "
    "order per route (new requests of a route with a backlog queue behind it). Delivery is "
    "at least once: a crash may resend a request, never lose one. Forward-mode requests are "
    "never spooled. Read at start.",
)

AUDIT = Obj(
    {
        "file": Field(
            _str(
                "Path of the JSON-lines audit log, created 0600; unset or empty: no audit log. "
                "With more than one worker each writes its own file, named with the worker's "
                "index (`audit.jsonl` becomes `audit.worker-0.jsonl`, `audit.worker-1.jsonl`, ...)."
            )
        ),
        "max_bytes": Field(
            Scalar(
                "size",
                minimum=1024,
                doc="Size at which the log is rotated: renamed `FILE.1`, older copies shift "
                "to `FILE.2` and on.",
            ),
            default=10 * 2**20,
        ),
        "backups": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Rotated copies kept (at least 1, so the log is always bounded by "
                "`max_bytes` times (backups + 1)); the oldest is deleted.",
            ),
            default=5,
        ),
    },
    doc="The audit log: one JSON line per request a scrub route forwarded, with its route, "
    "category, upstream host, status, event counts, the paths of the fields sent and which "
    "rule changed which path how often, never values. Read at start (a reload keeps the "
    "open log).",
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
                "`host[:port]` a client may CONNECT to (port 443 when left out); "
                "`*.example.com` allows every subdomain of example.com, not example.com "
                "itself. IPv6 addresses go in brackets.",
                check=_check_destination,
            ),
            required=True,
        ),
        "action": Field(
            _str(
                "`tunnel`: relay the encrypted bytes both ways, unread: nothing is scrubbed, "
                "only counted. `intercept`: decrypt with a certificate minted for the host and "
                "signed by `ca_cert_file`, and serve the requests through the routes as if "
                "their Host were the CONNECT host; clients must trust that CA, and clients "
                "that pin the vendor's certificate fail.",
                choices=("tunnel", "intercept"),
            ),
            required=True,
        ),
    }
)

FORWARD_PROXY = Obj(
    {
        "listener": Field(
            _str(
                "The listener clients use as `HTTP_PROXY`/`HTTPS_PROXY`: a plain-HTTP one (no "
                "`tls`). Absolute-form requests on it (`GET http://host/path`) are routed by "
                "host and path through the routes (no route: 403), so give its routes "
                "`match.host`. Read at start."
            ),
            required=True,
        ),
        "destinations": Field(
            ListOf(
                DESTINATION,
                doc="CONNECT allowlist; the first entry that matches wins, anything else is "
                "answered 403.",
            ),
            default=list,
        ),
        "ca_cert_file": Field(
            _str(
                "PEM CA certificate (CA:TRUE, allowed to sign certificates, not expired) that "
                "signs the certificates minted for `intercept` destinations; needed for "
                "`intercept`. The product must trust it."
            )
        ),
        "ca_key_file": Field(
            _str(
                "Unencrypted PEM private key of that CA. Whoever holds it can impersonate any "
                "site to clients that trust the CA: keep it 0600, readable by scrubgate only."
            )
        ),
        "max_tunnels": Field(
            Scalar(
                "int",
                minimum=1,
                doc="Tunnels (`action: tunnel`) open at once, per process; beyond it: 503.",
            ),
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
    "CONNECT is allowed only to listed destinations. Whether it is on, and on which "
    "listener, is read at start; the rest follows reloads.",
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
        "version": Field(
            Scalar("int", minimum=1, maximum=1, doc="Settings format version; must be `1`."),
            required=True,
        ),
        "workers": Field(
            Scalar(
                "any",
                doc="`auto` or a number of worker processes from 1 to 256, all serving every "
                "listener on the same ports (SO_REUSEPORT). With more than one, a supervisor "
                "process serves the admin listener, reloads the workers together and restarts "
                "a crashed one. `auto`: one per CPU this process may use, or 1 when a listener "
                "has port 0 (a number above 1 is then an error). Per-process limits "
                "(`max_concurrent_requests`, `max_buffered_bytes`, `spool.max_bytes`) apply "
                "per worker. Read at start.",
                check=_check_workers,
            ),
            default="auto",
        ),
        "listeners": Field(
            ListOf(
                LISTENER,
                min_items=1,
                doc="Where the product sends its telemetry: one HTTP (or, with `tls`, HTTPS) "
                "server per entry. Read at start: adding, removing or moving a listener "
                "needs a restart.",
            ),
            required=True,
        ),
        "admin": Field(ADMIN, default=ADMIN.defaults),
        "hashing": Field(HASHING, default=HASHING.defaults),
        "organization": Field(ORGANIZATION, default=ORGANIZATION.defaults),
        "detectors": Field(DETECTORS, default=DETECTORS.defaults),
        "limits": Field(LIMITS, default=LIMITS.defaults),
        "audit": Field(AUDIT, default=AUDIT.defaults),
        "spool": Field(SPOOL, default=SPOOL.defaults),
        "reload": Field(RELOAD, default=RELOAD.defaults),
        "categories": Field(
            MapOf(
                _str(choices=MODES),
                doc="Mode of each category: `forward` (send as received), `scrub` (apply the "
                "route's policy), `drop` (answer the route's `drop_response`, send nothing) "
                "or `block` (answer 403, send nothing). The built-in `feedback`, "
                "`analytics`, `clickstream`, `crash` and `traces` are `scrub` unless listed; "
                "any other category a route names must be listed. Switching one off is one "
                "line: `clickstream: drop`.",
            ),
            default=dict,
        ),
        "policies": Field(
            MapOf(
                POLICY,
                doc="Named policies: ordered rules, reusable across routes (a route names one "
                "in `policy`). Every policy is compiled and checked, used or not.",
            ),
            default=dict,
        ),
        "routes": Field(
            ListOf(
                ROUTE,
                min_items=1,
                doc="The first route whose `listener` and `match` fit a request takes it; an "
                "unmatched request is answered 404 (403 on the forward-proxy listener) and "
                "never relayed.",
            ),
            required=True,
        ),
        "forward_proxy": Field(FORWARD_PROXY),
    },
    doc="scrubgate's settings file. Only `version`, `listeners` and `routes` are required; every "
    "other section has defaults.",
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
    transform_memo_entries: int
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
        """One line for ``scrubgate check``: what the file sets up, no values."""
        rules = sum(len(self.raw["policies"][name]["rules"]) for name in self.plans)
        parts = [
            f"{len(self.listeners)} listener(s)",
            f"{len(self.routes)} route(s)",
            f"{len(self.plans)} polic{'y' if len(self.plans) == 1 else 'ies'} with {rules} rule(s)",
            f"{self.workers} worker{'' if self.workers == 1 else 's'}"
            + (" (auto)" if self.raw["workers"] == "auto" else ""),
        ]
        if self.forward_proxy is not None:
            parts.append(
                f"forward proxy on listener {self.forward_proxy.listener!r} with "
                f"{len(self.forward_proxy.destinations)} CONNECT destination(s)"
            )
        if self.spool.directory:
            parts.append(f"spool in {self.spool.directory}")
        return f"{self.file}: OK — {', '.join(parts)}"


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
        raise SettingsError(hide_environment_values(checker.problems, checker.from_environment))
    # Cross-references and compilation run even after schema problems, so one pass
    # reports everything; a file with any problem never loads.
    builder = _Builder(raw, checker.marks, environ, Path(file).parent)
    settings = builder.build(file, hashlib.sha256(text.encode()).hexdigest())
    problems = sorted(
        [*checker.problems, *builder.problems], key=lambda problem: (problem.line, problem.column)
    )
    if problems:
        raise SettingsError(hide_environment_values(problems, checker.from_environment))
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
                {"phone_regions": tuple(code.upper() for code in detectors["phone_regions"])}
                if detectors.get("phone_regions")
                else {}
            ),
            sensitive_query_params=tuple(detectors.get("sensitive_query_params") or ()),
        )
        return EngineSpec(
            hashing=self._hashing(),
            organization=self._organization(),
            detectors=detector_settings,
            limits=EngineLimits(
                max_depth=limits["max_depth"],
                max_values=limits["max_values"],
                memo_entries=limits["transform_memo_entries"],
            ),
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
        if key is not None:
            try:
                key = parse_hash_key(key)
            except ValueError as error:
                # The message names the problem (length, bad hex), never the key.
                self.problem("hashing", str(error))
                key, hint = None, "the configured key is not usable (see hashing)"
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
