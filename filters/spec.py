"""The engine's input: rules, policies and engine-wide options as plain frozen values.

These are what :func:`filters.compile.compile_policy` turns into a plan. The settings
layer (``proxy/settings.py``) builds them from the admin's YAML; library users can build
them directly. Every spec carries ``where``, its settings path (``policies.default.rules[2]``),
so that a compile error can point at the line the admin wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filters.actions.hashing import Algorithm

ACTIONS = (
    "remove",
    "keep",
    "hash",
    "mask",
    "replace",
    "redact",
    "truncate",
    "generalize",
    "drop-event",
    "sample",
)
"""Every action a rule can name."""

VALUE_TYPES = ("string", "number", "boolean", "null", "object", "array")

EVERYTHING = "**"
"""The selector that reaches every value; a ``redact`` rule on it is the final safety net."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule: where it applies (``select``), what it does (``action`` + ``params``).

    ``types`` restricts the rule to values of those JSON types (empty: any type).
    ``ignore_case`` makes key names and key globs in ``select`` case-insensitive.
    """

    id: str
    action: str
    select: tuple[str, ...] = (EVERYTHING,)
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    types: tuple[str, ...] = ()
    ignore_case: bool = False
    where: str = ""


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """An ordered list of rules, reusable across routes."""

    name: str
    rules: tuple[RuleSpec, ...]
    where: str = ""


@dataclass(frozen=True, slots=True)
class HashingSpec:
    """Keyed hashing. ``key`` is the secret itself (read by the caller from a file or an
    environment variable, never from the settings file); ``None`` means no key was given,
    which is only an error when a policy hashes or samples."""

    key: bytes | None = None
    algorithm: Algorithm = "hmac-sha256"
    length: int = 32
    prefix: str = ""
    where: str = "hashing"
    missing_hint: str = "set hashing.key_file or hashing.key_env"
    """Said when a rule needs the key and there is none (e.g. which variable is unset)."""

    def __repr__(self) -> str:
        return (
            f"HashingSpec(key={'<set>' if self.key else None}, algorithm={self.algorithm!r}, "
            f"length={self.length}, prefix={self.prefix!r})"
        )


@dataclass(frozen=True, slots=True)
class OrganizationSpec:
    """The organization dictionary: what identifies the admin's organization."""

    names: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()
    base_urls: tuple[str, ...] = ()
    where: str = "organization"

    @property
    def empty(self) -> bool:
        return not (self.names or self.domains or self.hostnames or self.cidrs or self.base_urls)


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Engine-wide detector options."""

    phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "CA")
    sensitive_query_params: tuple[str, ...] = ()
    where: str = "detectors"


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """Bounds on the work one document may cause."""

    max_depth: int = 128
    max_values: int = 1_000_000
    memo_entries: int = 2048
    """Results each ``hash`` and ``generalize`` rule remembers for repeated short strings
    (see :mod:`filters.memo`); 0 turns the memo off."""
    where: str = "limits"


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """Everything shared by all policies."""

    hashing: HashingSpec = HashingSpec()
    organization: OrganizationSpec = OrganizationSpec()
    detectors: DetectorSettings = DetectorSettings()
    limits: EngineLimits = EngineLimits()
