"""Every built-in detector by name, in one stable order.

The order matters: when two detectors find exactly the same span, the one listed first
names the hit (``?email=john@x.com`` counts as ``email``, ``Bearer <jwt>`` as ``jwt``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from filters.detectors.base import Detector
from filters.detectors.contact import DEFAULT_PHONE_REGIONS, email, phone
from filters.detectors.credentials import (
    DEFAULT_SECRET_NAMES,
    aws_access_key,
    aws_secret_key,
    bearer,
    github_token,
    gitlab_token,
    jwt,
    secret_assignment,
    slack_token,
    stripe_key,
)
from filters.detectors.financial import card, iban, ssn
from filters.detectors.identifiers import uuid
from filters.detectors.network import (
    DEFAULT_SENSITIVE_QUERY_PARAMS,
    ipv4,
    ipv6,
    mac,
    sensitive_query_params,
    url_userinfo,
)
from filters.detectors.paths import home_path


@dataclass(frozen=True)
class DetectorOptions:
    """The tunable parts of the built-in detectors (from the settings file)."""

    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    """ISO 3166 regions a national phone number (no ``+``) is tried against."""
    sensitive_query_params: tuple[str, ...] = DEFAULT_SENSITIVE_QUERY_PARAMS
    """Query parameters whose values ``sensitive_query_params`` replaces."""
    secret_names: tuple[str, ...] = DEFAULT_SECRET_NAMES
    """Names whose assigned values ``secret_assignment`` replaces (``password=...``)."""


_FACTORIES: Final[tuple[tuple[str, Callable[[DetectorOptions], Detector]], ...]] = (
    ("email", lambda _: email()),
    ("phone", lambda options: phone(options.phone_regions)),
    ("card", lambda _: card()),
    ("iban", lambda _: iban()),
    ("ssn", lambda _: ssn()),
    ("ipv4", lambda _: ipv4()),
    ("ipv6", lambda _: ipv6()),
    ("mac", lambda _: mac()),
    ("jwt", lambda _: jwt()),
    ("bearer", lambda _: bearer()),
    ("aws_access_key", lambda _: aws_access_key()),
    ("aws_secret_key", lambda _: aws_secret_key()),
    ("github_token", lambda _: github_token()),
    ("gitlab_token", lambda _: gitlab_token()),
    ("slack_token", lambda _: slack_token()),
    ("stripe_key", lambda _: stripe_key()),
    ("url_userinfo", lambda _: url_userinfo()),
    ("sensitive_query_params", lambda o: sensitive_query_params(o.sensitive_query_params)),
    ("secret_assignment", lambda options: secret_assignment(options.secret_names)),
    ("home_path", lambda _: home_path()),
    ("uuid", lambda _: uuid()),
)

BUILTIN_NAMES: Final = tuple(name for name, _ in _FACTORIES)
"""Every built-in detector name, in the order hits are attributed on ties."""

DEFAULT_ENABLED: Final = tuple(name for name in BUILTIN_NAMES if name != "uuid")
"""The detectors a policy gets when it does not list any (every built-in but ``uuid``,
matching each detector's ``default_enabled``)."""


DEFAULT_OPTIONS: Final = DetectorOptions()


def builtin_detectors(options: DetectorOptions = DEFAULT_OPTIONS) -> dict[str, Detector]:
    """Every built-in detector, keyed and ordered by :data:`BUILTIN_NAMES`. Raises
    ``ValueError`` for unusable options (an unknown phone region, an empty name)."""
    return {name: factory(options) for name, factory in _FACTORIES}
