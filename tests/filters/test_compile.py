"""filters/compile.py: specs → plan, and every problem reported at once with its place.

Each case is one broken policy; the test asserts the settings path (``where``) the error
names and a fragment of its message. Rules are built the way ``proxy/settings.py`` builds
them from YAML: the rule-level keys are ``RuleSpec`` fields, everything else is ``params``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from filters.compile import CompileError, EngineContext, PlanErrors, compile_policy
from filters.plan import Plan
from filters.spec import DetectorSettings, EngineSpec, HashingSpec, PolicySpec, RuleSpec
from tests.filters.yaml_rules import rule_from_yaml

KEY = b"compile-test-key-0123456789abcdef"
POLICY = "policies.test"
NO_SELECTOR = "<none>"
CONFIG_EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def rule(rule_id: str, action: str, *select: str, **params: Any) -> RuleSpec:
    """A rule as the settings layer builds it; ``where`` is filled in by :func:`policy`.
    No selector means ``**`` (the spec default); ``NO_SELECTOR`` gives an empty tuple."""
    types = tuple(params.pop("types", ()))
    ignore_case = bool(params.pop("ignore_case", False))
    return RuleSpec(
        id=rule_id,
        action=action,
        select=() if select == (NO_SELECTOR,) else select or ("**",),
        params=MappingProxyType(params),
        types=types,
        ignore_case=ignore_case,
    )


def policy(*rules: RuleSpec) -> PolicySpec:
    placed = tuple(
        dataclasses.replace(each, where=f"{POLICY}.rules[{index}]")
        for index, each in enumerate(rules)
    )
    return PolicySpec(name="test", rules=placed, where=POLICY)


def engine(key: bytes | None = KEY) -> EngineSpec:
    return EngineSpec(hashing=HashingSpec(key=key))


def compile_errors(spec: PolicySpec, engine_spec: EngineSpec) -> list[CompileError]:
    with pytest.raises(PlanErrors) as raised:
        compile_policy(spec, engine_spec)
    return list(raised.value.errors)


def r0(field: str = "") -> str:
    """The settings path of the first rule, plus a field."""
    return f"{POLICY}.rules[0]{'.' + field if field else ''}"


# (id, rules, hash key, expected where, message fragment)
ERROR_CASES = [
    ("unknown-action", [rule("a", "explode", "x")], KEY, r0("action"), "unknown action 'explode'"),
    (
        "invalid-selector",
        [rule("a", "remove", "ok", "a..b")],
        KEY,
        r0("select[1]"),
        "invalid selector: empty step",
    ),
    (
        "invalid-selector-unclosed-bracket",
        [rule("a", "remove", "items[")],
        KEY,
        r0("select[0]"),
        "invalid selector: unclosed '['",
    ),
    ("empty-select", [rule("a", "remove", NO_SELECTOR)], KEY, r0("select"), "at least one"),
    (
        "unknown-value-type",
        [rule("a", "remove", "x", types=["string", "text"])],
        KEY,
        r0("types"),
        "unknown value type 'text'",
    ),
    (
        "unknown-detector",
        [rule("a", "redact", "message", detectors=["email", "nope"])],
        KEY,
        r0("detectors[1]"),
        "unknown detector 'nope'",
    ),
    (
        "custom-pattern-backreference",
        [rule("a", "redact", patterns=[{"name": "twice", "regex": r"(ab)\1"}])],
        KEY,
        r0("patterns[0].regex"),
        "pattern 'twice' rejected",
    ),
    (
        "custom-pattern-lookbehind",
        [rule("a", "redact", patterns=[{"name": "after", "regex": r"(?<=id=)\d+"}])],
        KEY,
        r0("patterns[0].regex"),
        "not accepted by RE2",
    ),
    (
        "custom-pattern-second-of-two",
        [
            rule(
                "a",
                "redact",
                "msg",
                patterns=[
                    {"name": "ticket", "regex": r"TCK-[0-9]{4}"},
                    {"name": "ahead", "regex": r"x(?=y)"},
                ],
            )
        ],
        KEY,
        r0("patterns[1].regex"),
        "pattern 'ahead' rejected",
    ),
    (
        "matches-backreference",
        [rule("a", "drop-event", "event", matches=r"(a)\1")],
        KEY,
        r0("matches"),
        "rejected by the linear-time regex engine",
    ),
    (
        "matches-lookbehind",
        [rule("a", "drop-event", "event", matches=r"(?<!x)y")],
        KEY,
        r0("matches"),
        "rejected by the linear-time regex engine",
    ),
    ("hash-without-key", [rule("a", "hash", "userId")], None, r0(), "needs a hash key"),
    (
        "sample-without-key",
        [rule("a", "sample", "userId", rate=0.5)],
        None,
        r0(),
        "needs a hash key",
    ),
    ("keep-without-fields", [rule("a", "keep", "properties")], KEY, r0("fields"), "non-empty"),
    (
        "keep-with-empty-fields",
        [rule("a", "keep", "properties", fields=[])],
        KEY,
        r0("fields"),
        "non-empty",
    ),
    (
        "keep-with-invalid-field",
        [rule("a", "keep", "properties", fields=["plan", "a..b"])],
        KEY,
        r0("fields[1]"),
        "invalid selector",
    ),
    ("replace-without-with", [rule("a", "replace", "x")], KEY, r0("with"), "needs a 'with'"),
    (
        "replace-with-container",
        [rule("a", "replace", "x", **{"with": {"nested": 1}})],
        KEY,
        r0(),
        "invalid replace parameters",
    ),
    (
        "truncate-without-max-length",
        [rule("a", "truncate", "x")],
        KEY,
        r0("max_length"),
        "needs max_length",
    ),
    (
        "truncate-zero-max-length",
        [rule("a", "truncate", "x", max_length=0)],
        KEY,
        r0(),
        "invalid truncate parameters",
    ),
    (
        "mask-two-char-mask",
        [rule("a", "mask", "x", char="##")],
        KEY,
        r0(),
        "invalid mask parameters",
    ),
    (
        "generalize-unknown-kind",
        [rule("a", "generalize", "x", kind="zipcode")],
        KEY,
        r0("kind"),
        "generalize needs kind",
    ),
    ("generalize-without-kind", [rule("a", "generalize", "x")], KEY, r0("kind"), "needs kind"),
    (
        "generalize-bad-timestamp-bucket",
        [rule("a", "generalize", "ts", kind="timestamp", bucket="fortnight")],
        KEY,
        r0(),
        "invalid generalize parameters",
    ),
    ("drop-event-no-condition", [rule("a", "drop-event", "event")], KEY, r0(), "exactly one"),
    (
        "drop-event-two-conditions",
        [rule("a", "drop-event", "event", equals="x", exists=True)],
        KEY,
        r0(),
        "exactly one of: equals, in, matches, exists",
    ),
    ("sample-rate-above-one", [rule("a", "sample", "u", rate=1.5)], KEY, r0("rate"), "between"),
    ("sample-rate-negative", [rule("a", "sample", "u", rate=-0.1)], KEY, r0("rate"), "between"),
    ("sample-rate-string", [rule("a", "sample", "u", rate="0.5")], KEY, r0("rate"), "between"),
    ("sample-rate-bool", [rule("a", "sample", "u", rate=True)], KEY, r0("rate"), "between"),
    ("sample-rate-missing", [rule("a", "sample", "u")], KEY, r0("rate"), "between 0 and 1"),
    (
        "duplicate-rule-id",
        [rule("same", "remove", "a"), rule("same", "remove", "b")],
        KEY,
        f"{POLICY}.rules[1].id",
        "duplicate rule id 'same' in policy 'test'",
    ),
    (
        "kept-and-removed",
        [
            rule("keeper", "keep", "properties", fields=["plan"]),
            rule("remover", "remove", "properties"),
        ],
        KEY,
        f"{POLICY}.rules[1].select",
        "kept by rule 'keeper' and removed by rule 'remover'",
    ),
    (
        "removed-then-kept",
        [
            rule("remover", "remove", "properties"),
            rule("keeper", "keep", "properties", fields=["a"]),
        ],
        KEY,
        f"{POLICY}.rules[1].select",
        "kept by rule 'keeper' and removed by rule 'remover'",
    ),
    (
        "redact-with-no-detectors",
        [rule("a", "redact", "msg", detectors=[], organization=False)],
        KEY,
        r0(),
        "selects no detectors",
    ),
]


@pytest.mark.parametrize(
    ("rules", "key", "where", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES],
)
def test_compile_error(rules, key, where, fragment):
    errors = compile_errors(policy(*rules), engine(key))
    assert [error.where for error in errors] == [where]
    assert fragment in errors[0].message
    assert str(errors[0]) == f"{where}: {errors[0].message}"


def test_rejected_pattern_text_is_not_echoed():
    secret_pattern = r"(hunter2)\1"
    errors = compile_errors(
        policy(rule("a", "redact", patterns=[{"name": "pw", "regex": secret_pattern}])), engine()
    )
    assert secret_pattern not in errors[0].message
    assert "hunter2" not in str(PlanErrors(errors))


def test_invalid_hash_key_is_reported_at_hashing():
    errors = compile_errors(policy(rule("a", "hash", "userId")), engine(b"too-short"))
    assert [error.where for error in errors] == ["hashing"]
    assert "at least 16 bytes" in errors[0].message
    assert "too-short" not in errors[0].message


def test_every_error_of_a_policy_is_reported_together():
    spec = policy(
        rule("ok-remove", "remove", "**.password"),
        rule("bad-action", "obliterate", "x"),
        rule("bad-selector", "hash", "user..id"),
        rule("bad-type", "mask", "card", types=["digits"]),
        rule("bad-detector", "redact", "msg", detectors=["email", "telepathy"]),
        rule("bad-pattern", "redact", patterns=[{"name": "p", "regex": r"(?<=a)b"}]),
        rule("bad-matches", "drop-event", "event", matches=r"(x)\1"),
        rule("no-fields", "keep", "properties"),
        rule("no-with", "replace", "ip"),
        rule("no-length", "truncate", "text"),
        rule("bad-kind", "generalize", "ip", kind="city"),
        rule("two-conditions", "drop-event", "event", equals="a", exists=True),
        rule("bad-rate", "sample", "userId", rate=2),
        rule("ok-remove", "remove", "other"),
        rule("remove-props", "remove", "properties"),
    )
    errors = compile_errors(spec, engine())
    expected = {
        (f"{POLICY}.rules[1].action", "unknown action"),
        (f"{POLICY}.rules[2].select[0]", "invalid selector"),
        (f"{POLICY}.rules[3].types", "unknown value type 'digits'"),
        (f"{POLICY}.rules[4].detectors[1]", "unknown detector 'telepathy'"),
        (f"{POLICY}.rules[5].patterns[0].regex", "rejected"),
        (f"{POLICY}.rules[6].matches", "rejected"),
        (f"{POLICY}.rules[7].fields", "non-empty"),
        (f"{POLICY}.rules[8].with", "'with'"),
        (f"{POLICY}.rules[9].max_length", "max_length"),
        (f"{POLICY}.rules[10].kind", "kind"),
        (f"{POLICY}.rules[11]", "exactly one"),
        (f"{POLICY}.rules[12].rate", "between 0 and 1"),
        (f"{POLICY}.rules[13].id", "duplicate rule id 'ok-remove'"),
        (f"{POLICY}.rules[14].select", "kept by rule 'no-fields'"),
    }
    assert len(errors) == len(expected)
    for where, fragment in expected:
        assert any(e.where == where and fragment in e.message for e in errors), where
    # The exception text lists them all too (what `scrubgate check` prints).
    assert all(str(error) in str(PlanErrors(errors)) for error in errors)


def test_missing_key_is_reported_for_every_rule_that_needs_it():
    spec = policy(
        rule("hash-ids", "hash", "userId"),
        rule("sample-users", "sample", "userId", rate=0.1),
        rule("hash-more", "hash", "accountId"),
    )
    errors = compile_errors(spec, engine(None))
    assert [error.where for error in errors] == [
        f"{POLICY}.rules[0]",
        f"{POLICY}.rules[1]",
        f"{POLICY}.rules[2]",
    ]


def test_redact_without_detectors_is_reported_even_after_another_error():
    spec = policy(
        rule("broken", "explode", "x"),
        rule("empty", "redact", "msg", detectors=[], organization=False),
    )
    errors = compile_errors(spec, engine())
    assert [error.where for error in errors] == [f"{POLICY}.rules[0].action", f"{POLICY}.rules[1]"]


def test_valid_policy_compiles_to_a_plan_with_rule_ids_in_order():
    spec = policy(
        rule("drop-debug", "drop-event", "level", equals="debug"),
        rule("sample-users", "sample", "userId", rate=0.5),
        rule("remove-secrets", "remove", "**.*secret*", ignore_case=True),
        rule("hash-ids", "hash", "**.userId"),
        rule("keep-props", "keep", "properties", fields=["plan"]),
        rule("cut", "truncate", "**", types=["string"], max_length=100),
        rule("sweep", "redact", detectors=["email", "ipv4"]),
    )
    plan = compile_policy(spec, engine())
    assert isinstance(plan, Plan)
    assert plan.name == "test"
    assert plan.rule_ids == (
        "drop-debug",
        "sample-users",
        "remove-secrets",
        "hash-ids",
        "keep-props",
        "cut",
        "sweep",
    )


def test_policy_without_hashing_compiles_without_a_key():
    plan = compile_policy(policy(rule("rm", "remove", "x")))
    assert plan.scrub({"x": 1, "y": 2}).json == b'{"y":2}'


def test_one_engine_context_serves_several_policies():
    context = EngineContext(engine())
    first = compile_policy(policy(rule("h", "hash", "id")), context)
    second = compile_policy(policy(rule("h", "hash", "id")), context)
    assert first.scrub({"id": "u-1"}).json == second.scrub({"id": "u-1"}).json


def test_engine_context_errors_are_part_of_every_policy_compile():
    context = EngineContext(engine(b"short"))
    for _ in range(2):
        with pytest.raises(PlanErrors) as raised:
            compile_policy(policy(rule("rm", "remove", "x")), context)
        assert [error.where for error in raised.value.errors] == ["hashing"]


def _policies_of_config_example() -> dict[str, list[dict[str, Any]]]:
    raw = yaml.safe_load(CONFIG_EXAMPLE.read_text())
    return {name: body["rules"] for name, body in raw["policies"].items()}


@pytest.mark.parametrize("name", sorted(_policies_of_config_example()))
def test_config_example_policies_compile(name):
    rules = [rule_from_yaml(entry) for entry in _policies_of_config_example()[name]]
    plan = compile_policy(policy(*rules), engine())
    assert plan.rule_ids == tuple(dict.fromkeys(entry.id for entry in rules))


def test_settings_query_params_are_added_to_the_built_in_ones():
    """config.example.yaml names extra parameters; `email` (built in) stays sensitive
    (regression: the settings list replaced the built-in one; found by codec fuzzing)."""
    spec = EngineSpec(detectors=DetectorSettings(sensitive_query_params=("invite",)))
    plan = compile_policy(
        PolicySpec("p", (RuleSpec("sweep", "redact", ("**",)),), where="policies.p"), spec
    )
    scrubbed, _ = plan.scrub_text("https://x.example/p?email=jane.doe%40example.com&invite=abc")
    assert "jane.doe" not in scrubbed and "abc" not in scrubbed
