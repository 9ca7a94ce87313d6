"""Specs → plan. Validation is compilation: everything that can be wrong with a policy is
found here, every problem at once, each naming the settings path it came from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from filters.actions import (
    GeneralizeIp,
    GeneralizeTimestamp,
    GeneralizeUrl,
    GeneralizeUserAgent,
    KeyedHasher,
    Mask,
    Replace,
    Truncate,
)
from filters.detectors.base import BufferKind, Detector
from filters.detectors.custom import custom_detector
from filters.detectors.network import DEFAULT_SENSITIVE_QUERY_PARAMS
from filters.detectors.organization import organization_detector
from filters.detectors.registry import DEFAULT_ENABLED, DetectorOptions, builtin_detectors
from filters.detectors.scanner import Scanner
from filters.memo import Memo
from filters.outcome import Outcome
from filters.plan import EventFilter, Plan
from filters.selectors import PathAutomaton, Selector, SelectorError, Step, StepKind, parse_selector
from filters.spec import ACTIONS, EVERYTHING, EngineSpec, PolicySpec, RuleSpec
from filters.sweep import DetectorSweep
from filters.walker import FieldKind, FieldRule, FieldWalker, Transform

_PYTHON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}

_QUIET_RE2 = re2.Options()
_QUIET_RE2.log_errors = False  # errors are reported as settings problems, not on stderr


@dataclass(frozen=True, slots=True)
class CompileError:
    """One problem: ``where`` is the settings path (``policies.default.rules[2].select``)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PlanErrors(ValueError):
    """Every problem found while compiling, in settings order."""

    def __init__(self, errors: Sequence[CompileError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = tuple(errors)


class EngineContext:
    """What all policies share, compiled once: detectors, the hasher, the org dictionary."""

    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.errors: list[CompileError] = []
        # Settings name extra sensitive query parameters, added to the built-in ones.
        extra_params = tuple(
            name
            for name in spec.detectors.sensitive_query_params
            if name not in DEFAULT_SENSITIVE_QUERY_PARAMS
        )
        options = DetectorOptions(
            phone_regions=spec.detectors.phone_regions,
            sensitive_query_params=DEFAULT_SENSITIVE_QUERY_PARAMS + extra_params,
        )
        self.detectors: dict[str, Detector] = builtin_detectors(options)
        self.organization: Detector | None = self._organization()
        self.hasher: KeyedHasher | None = self._hasher()

    def _organization(self) -> Detector | None:
        org = self.spec.organization
        if org.empty:
            return None
        try:
            return organization_detector(
                names=org.names,
                domains=org.domains,
                hostnames=org.hostnames,
                cidrs=org.cidrs,
                base_urls=org.base_urls,
            )
        except ValueError as error:
            self.errors.append(CompileError(org.where, str(error)))
            return None

    def _hasher(self) -> KeyedHasher | None:
        hashing = self.spec.hashing
        if hashing.key is None:
            return None
        try:
            return KeyedHasher(
                hashing.key,
                algorithm=hashing.algorithm,
                length=hashing.length,
                prefix=hashing.prefix,
            )
        except ValueError as error:
            self.errors.append(CompileError(hashing.where, str(error)))
            return None


def compile_policy(policy: PolicySpec, engine: EngineSpec | EngineContext | None = None) -> Plan:
    """Build the plan for one policy, or raise :class:`PlanErrors` listing every problem."""
    context = engine if isinstance(engine, EngineContext) else EngineContext(engine or EngineSpec())
    compiler = _PolicyCompiler(policy, context)
    plan = compiler.build()
    errors = [*context.errors, *compiler.errors]
    if errors:
        raise PlanErrors(errors)
    return plan


class _WalkerBuilder:
    """Collects field rules and their selectors for one :class:`FieldWalker`."""

    def __init__(self) -> None:
        self.rules: list[FieldRule] = []
        self.selectors: list[Selector] = []
        self.labels: list[int] = []

    def add(self, rule: FieldRule, selectors: list[Selector]) -> None:
        self.labels.extend([len(self.rules)] * len(selectors))
        self.rules.append(rule)
        self.selectors.extend(selectors)

    def build(self, max_depth: int) -> FieldWalker:
        return FieldWalker(self.rules, PathAutomaton(self.selectors, self.labels), max_depth)


class _PolicyCompiler:
    def __init__(self, policy: PolicySpec, context: EngineContext) -> None:
        self.policy = policy
        self.context = context
        self.errors: list[CompileError] = []
        self.event_filters: list[EventFilter] = []
        self.fields = _WalkerBuilder()
        self.sweep_detectors: dict[str, Detector] = {}
        self.sweep_rules: dict[str, str] = {}

    def build(self) -> Plan:
        self._check_rule_ids()
        for rule in self.policy.rules:
            self._compile_rule(rule)
        self._check_conflicts()
        return Plan(
            name=self.policy.name,
            rule_ids=tuple(dict.fromkeys(rule.id for rule in self.policy.rules)),
            event_filters=self.event_filters,
            fields=self.fields.build(self.context.spec.limits.max_depth),
            sweep=self._sweep(),
            limits=self.context.spec.limits,
        )

    def error(self, where: str, message: str) -> None:
        self.errors.append(CompileError(where, message))

    def _check_rule_ids(self) -> None:
        seen: set[str] = set()
        for rule in self.policy.rules:
            if rule.id in seen:
                self.error(
                    f"{rule.where}.id",
                    f"duplicate rule id {rule.id!r} in policy {self.policy.name!r}",
                )
            seen.add(rule.id)

    def _compile_rule(self, rule: RuleSpec) -> None:
        if rule.action not in ACTIONS:
            self.error(f"{rule.where}.action", f"unknown action {rule.action!r}")
            return
        selectors = self._parse_selectors(rule)
        if selectors is None:
            return
        if rule.action in ("drop-event", "sample"):
            self._compile_event_filter(rule, selectors)
        elif rule.action == "redact" and rule.select == (EVERYTHING,):
            self._add_to_sweep(rule)
        else:
            self._compile_field_rule(rule, selectors)

    def _parse_selectors(self, rule: RuleSpec) -> list[Selector] | None:
        if not rule.select:
            self.error(f"{rule.where}.select", "needs at least one selector")
            return None
        parsed: list[Selector] = []
        for index, text in enumerate(rule.select):
            try:
                parsed.append(parse_selector(text, ignore_case=rule.ignore_case))
            except SelectorError as error:
                self.error(f"{rule.where}.select[{index}]", f"invalid selector: {error}")
        unknown_types = [name for name in rule.types if name not in _PYTHON_TYPES]
        for name in unknown_types:
            self.error(
                f"{rule.where}.types",
                f"unknown value type {name!r} (expected one of {', '.join(_PYTHON_TYPES)})",
            )
        return parsed if len(parsed) == len(rule.select) and not unknown_types else None

    # --- field rules -------------------------------------------------------------------

    def _compile_field_rule(self, rule: RuleSpec, selectors: list[Selector]) -> None:
        kind, transform, keep = FieldKind.TRANSFORM, None, None
        if rule.action == "truncate":
            # Truncation runs after every other field rule, on strings the sweep's
            # detectors have been through (see Plan): cutting first could hide the rest of
            # an e-mail address or a token from them.
            kind = FieldKind.LATE
        if rule.action == "remove":
            kind = FieldKind.REMOVE
        elif rule.action == "keep":
            kind, keep = FieldKind.KEEP, self._keep_automaton(rule)
        else:
            transform = self._transform(rule)
            # A transform selecting a container applies to every scalar inside it.
            selectors = [_below(selector) for selector in selectors]
        if (transform is None and kind in (FieldKind.TRANSFORM, FieldKind.LATE)) or (
            kind is FieldKind.KEEP and keep is None
        ):
            return
        types = frozenset(python_type for name in rule.types for python_type in _PYTHON_TYPES[name])
        self.fields.add(
            FieldRule(
                id=rule.id,
                kind=kind,
                types=types,
                transform=transform,
                keep=keep,
                pure=transform.apply if isinstance(transform, Memo) else None,
                keeps_up_to=rule.params["max_length"] if rule.action == "truncate" else None,
            ),
            selectors,
        )

    def _keep_automaton(self, rule: RuleSpec) -> PathAutomaton | None:
        fields = rule.params.get("fields")
        if not fields:
            self.error(f"{rule.where}.fields", "keep needs a non-empty list of fields to keep")
            return None
        parsed: list[Selector] = []
        for index, text in enumerate(fields):
            try:
                parsed.append(parse_selector(str(text), ignore_case=rule.ignore_case))
            except SelectorError as error:
                self.error(f"{rule.where}.fields[{index}]", f"invalid selector: {error}")
        return PathAutomaton(parsed) if len(parsed) == len(fields) else None

    def _transform(self, rule: RuleSpec) -> Transform | None:
        params = rule.params
        where = rule.where
        try:
            match rule.action:
                case "hash":
                    hasher = self._require_hasher(rule)
                    return None if hasher is None else self._memoized(hasher.hash_value)
                case "mask":
                    return _scalar(
                        Mask(
                            keep_last=params.get("keep_last", 4),
                            char=params.get("char", "*"),
                            keep_first=params.get("keep_first", 0),
                        ).apply
                    )
                case "replace":
                    if "with" not in params:
                        self.error(f"{where}.with", "replace needs a 'with' value")
                        return None
                    return _scalar(Replace(params["with"]).apply)
                case "truncate":
                    if "max_length" not in params:
                        self.error(f"{where}.max_length", "truncate needs max_length")
                        return None
                    return _scalar(
                        Truncate(params["max_length"], suffix=params.get("suffix", "…")).apply
                    )
                case "generalize":
                    return self._generalizer(rule)
                case "redact":
                    return self._scoped_redaction(rule)
        except (ValueError, TypeError) as error:
            self.error(where, f"invalid {rule.action} parameters: {error}")
        return None

    def _generalizer(self, rule: RuleSpec) -> Transform | None:
        params = rule.params
        kind = params.get("kind")
        match kind:
            case "ip":
                action: Any = GeneralizeIp(
                    ipv4_prefix=params.get("ipv4_prefix", 24),
                    ipv6_prefix=params.get("ipv6_prefix", 48),
                )
            case "url":
                action = GeneralizeUrl(allow_params=frozenset(params.get("allow_params", ())))
            case "timestamp":
                action = GeneralizeTimestamp(bucket=params.get("bucket", "hour"))
            case "user_agent":
                action = GeneralizeUserAgent()
            case _:
                self.error(
                    f"{rule.where}.kind", "generalize needs kind: ip, url, timestamp or user_agent"
                )
                return None
        return self._memoized(action.apply)

    def _memoized(self, action: Callable[[Any], Any]) -> Transform:
        """A pure action as a transform, behind a memo unless the limits turn it off."""
        entries = self.context.spec.limits.memo_entries
        return Memo(action, entries) if entries > 0 else _scalar(action)

    def _require_hasher(self, rule: RuleSpec) -> Any:
        if self.context.hasher is None and self.context.spec.hashing.key is None:
            self.error(
                rule.where,
                f"rule {rule.id!r} needs a hash key, but none is configured "
                f"({self.context.spec.hashing.missing_hint})",
            )
        return self.context.hasher

    # --- redaction -------------------------------------------------------------------

    def _redaction_detectors(self, rule: RuleSpec) -> list[Detector]:
        params = rule.params
        names = params.get("detectors", "all")
        chosen: list[Detector] = []
        if names == "all" or list(names) == ["all"]:
            chosen.extend(self.context.detectors[name] for name in DEFAULT_ENABLED)
        else:
            for index, name in enumerate(names):
                detector = self.context.detectors.get(name)
                if detector is None:
                    self.error(f"{rule.where}.detectors[{index}]", f"unknown detector {name!r}")
                else:
                    chosen.append(detector)
        errors_before = len(self.errors)
        for index, pattern in enumerate(params.get("patterns", ())):
            where = f"{rule.where}.patterns[{index}]"
            if not pattern.get("name") or not pattern.get("regex"):
                self.error(where, "a pattern needs a name and a regex")
                continue
            if pattern["name"] in self.context.detectors or any(
                detector.name == pattern["name"] for detector in chosen
            ):
                self.error(f"{where}.name", f"{pattern['name']!r} is already a detector name")
                continue
            try:
                chosen.append(
                    custom_detector(
                        pattern["name"],
                        pattern["regex"],
                        pattern.get("replacement", f"[{pattern['name']}]"),
                        bool(pattern.get("ignore_case", False)),
                    )
                )
            except ValueError as error:
                self.error(f"{where}.regex", f"pattern {pattern.get('name')!r} rejected: {error}")
        if params.get("organization", True) and self.context.organization is not None:
            chosen.append(self.context.organization)
        if not chosen and len(self.errors) == errors_before:
            self.error(rule.where, "redact rule selects no detectors")
        return chosen

    def _add_to_sweep(self, rule: RuleSpec) -> None:
        for detector in self._redaction_detectors(rule):
            self.sweep_detectors.setdefault(detector.name, detector)
            self.sweep_rules.setdefault(detector.name, rule.id)

    def _scoped_redaction(self, rule: RuleSpec) -> Transform | None:
        detectors = self._redaction_detectors(rule)
        return _redaction(Scanner(detectors)) if detectors else None

    def _sweep(self) -> DetectorSweep | None:
        if not self.sweep_detectors:
            return None
        return DetectorSweep(
            scanner=Scanner(list(self.sweep_detectors.values())), rule_of_detector=self.sweep_rules
        )

    # --- event filters -----------------------------------------------------------------

    def _compile_event_filter(self, rule: RuleSpec, selectors: list[Selector]) -> None:
        keeps = (
            self._drop_condition(rule, PathAutomaton(selectors))
            if rule.action == "drop-event"
            else self._sampler(rule, [PathAutomaton([selector]) for selector in selectors])
        )
        if keeps is not None:
            self.event_filters.append(EventFilter(id=rule.id, keeps=keeps))

    def _drop_condition(
        self, rule: RuleSpec, finder: PathAutomaton
    ) -> Callable[[Any], bool] | None:
        params = rule.params
        given = [name for name in ("equals", "in", "matches", "exists") if name in params]
        if len(given) != 1:
            self.error(rule.where, "drop-event needs exactly one of: equals, in, matches, exists")
            return None
        condition = given[0]
        if condition == "matches":
            try:
                pattern = re2.compile(str(params["matches"]), _QUIET_RE2)
            except re2.error:
                self.error(
                    f"{rule.where}.matches", "pattern rejected by the linear-time regex engine"
                )
                return None
            return lambda event: (
                not any(
                    isinstance(value, str) and pattern.search(value)
                    for value in find_values(event, finder)
                )
            )
        if condition == "exists":
            wanted = bool(params["exists"])
            return lambda event: (len(find_values(event, finder)) > 0) != wanted
        choices = list(params["in"]) if condition == "in" else [params["equals"]]
        return lambda event: not any(_equal(value, choices) for value in find_values(event, finder))

    def _sampler(
        self, rule: RuleSpec, finders: list[PathAutomaton]
    ) -> Callable[[Any], bool] | None:
        rate = rule.params.get("rate")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
            self.error(f"{rule.where}.rate", "sample needs rate between 0 and 1")
            return None
        hasher = self._require_hasher(rule)
        if hasher is None:
            return None
        keep_missing = rule.params.get("missing", "keep") == "keep"

        def keeps(event: Any) -> bool:
            # Selectors are tried in the order written, so the decision does not depend
            # on the order in which an SDK happened to serialize the keys.
            for finder in finders:
                for value in find_values(event, finder):
                    if isinstance(value, str | int | float) and not isinstance(value, bool):
                        return hasher.fraction(value) < rate
            return keep_missing

        return keeps

    # --- cross-rule checks -----------------------------------------------------------

    def _check_conflicts(self) -> None:
        owners: dict[str, tuple[str, str]] = {}
        for rule in self.policy.rules:
            if rule.action not in ("keep", "remove"):
                continue
            for text in rule.select:
                action, owner = owners.setdefault(text, (rule.action, rule.id))
                if action != rule.action:
                    kept_by, removed_by = (owner, rule.id) if action == "keep" else (rule.id, owner)
                    self.error(
                        f"{rule.where}.select",
                        f"selector {text!r} is kept by rule {kept_by!r} and removed by rule "
                        f"{removed_by!r}; choose one",
                    )


def _equal(value: Any, choices: list[Any]) -> bool:
    """``value in choices``, except that booleans never equal numbers (``True == 1``)."""
    return any(
        value == choice and isinstance(value, bool) == isinstance(choice, bool)
        for choice in choices
    )


def _below(selector: Selector) -> Selector:
    """``a.b`` → ``a.b.**``: the selected value and everything inside it."""
    if selector.steps and selector.steps[-1].kind is StepKind.DEEP:
        return selector
    return Selector(
        text=selector.text,
        steps=(*selector.steps, Step(StepKind.DEEP)),
        ignore_case=selector.ignore_case,
    )


def _scalar(function: Callable[[Any], Any]) -> Transform:
    return lambda value, _outcome: function(value)


def find_values(document: Any, finder: PathAutomaton) -> list[Any]:
    """Every value in ``document`` that a selector in ``finder`` reaches."""
    found: list[Any] = []
    _collect(document, finder, finder.start, found)
    return found


def _collect(node: Any, finder: PathAutomaton, state: int, found: list[Any]) -> None:
    if finder.accepts(state):
        found.append(node)
    if not finder.descends(state):
        return
    if type(node) is dict:
        items: Any = node.items()
    elif type(node) is list:
        items = enumerate(node)
    else:
        return
    for key, value in items:
        target = finder.step(state, key)
        if target != PathAutomaton.DEAD:
            _collect(value, finder, target, found)


def _redaction(scanner: Scanner) -> Transform:
    """A transform replacing what ``scanner``'s detectors find inside a string."""

    def redact(value: Any, outcome: Outcome) -> Any:
        if type(value) is not str:
            return value
        encoded = value.encode("utf-8", "surrogatepass")
        scrubbed, counts = scanner.redact(encoded, BufferKind.TEXT)
        if scrubbed is encoded:
            return value
        outcome.detector_hits.update(counts)
        return scrubbed.decode("utf-8", "surrogatepass")

    return redact
