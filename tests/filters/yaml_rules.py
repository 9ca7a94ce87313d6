"""Rules written as YAML (a ``policies.*.rules`` entry) → ``RuleSpec``, the way the
settings layer maps them, for engine tests that read policies from YAML files."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from filters.spec import RuleSpec

_COMMON = {"id", "action", "select", "types", "ignore_case", "description"}


def rule_from_yaml(entry: Mapping[str, Any]) -> RuleSpec:
    select = entry.get("select", ["**"])
    return RuleSpec(
        id=entry["id"],
        action=entry["action"],
        select=tuple([select] if isinstance(select, str) else select),
        params=MappingProxyType({key: value for key, value in entry.items() if key not in _COMMON}),
        types=tuple(entry.get("types", ())),
        ignore_case=bool(entry.get("ignore_case", False)),
    )
