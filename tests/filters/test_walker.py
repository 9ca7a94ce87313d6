"""filters/walker.py: the one-pass FieldWalker, driven directly with compiled field rules
and a PathAutomaton (tests/filters/test_plan.py covers it through whole plans)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.outcome import LimitExceeded, Outcome
from filters.selectors import PathAutomaton, parse_selector
from filters.walker import FieldKind, FieldRule, FieldWalker, Transform, format_path


def remove(rule_id: str, *types: type) -> FieldRule:
    return FieldRule(rule_id, FieldKind.REMOVE, frozenset(types))


def transform(rule_id: str, function: Transform, *types: type) -> FieldRule:
    return FieldRule(rule_id, FieldKind.TRANSFORM, frozenset(types), transform=function)


def keep(rule_id: str, *fields: str) -> FieldRule:
    allow = PathAutomaton([parse_selector(text) for text in fields])
    return FieldRule(rule_id, FieldKind.KEEP, frozenset(), keep=allow)


def suffix(text: str) -> Transform:
    def append(value: Any, _outcome: Outcome) -> Any:
        return f"{value}{text}"

    return append


def walker(*rules: tuple[FieldRule, list[str]], max_depth: int = 32) -> FieldWalker:
    """A walker over ``(rule, selectors)`` pairs, rule numbers in the order given."""
    selectors = [parse_selector(text) for _, texts in rules for text in texts]
    labels = [number for number, (_, texts) in enumerate(rules) for _ in texts]
    return FieldWalker([rule for rule, _ in rules], PathAutomaton(selectors, labels), max_depth)


def walk(
    field_walker: FieldWalker, document: Any, skip: frozenset[int] | None = None
) -> tuple[Any, Outcome]:
    """Walk with explain on; return the document and the outcome."""
    outcome = Outcome(changes=[])
    return field_walker.walk_root(document, outcome, skip, []), outcome


# --- REMOVED ---------------------------------------------------------------------------


def test_removed_keys_leave_the_dict_and_are_counted() -> None:
    document = {"user": {"email": "a@b", "name": "n", "id": 1}, "email": "top"}
    result, outcome = walk(walker((remove("rm"), ["user.email", "user.name"])), document)
    assert result == {"user": {"id": 1}, "email": "top"}
    assert outcome.rule_hits == {"rm": 2}
    assert sorted(outcome.changes or []) == [("rm", "user.email"), ("rm", "user.name")]


def test_several_removed_list_elements_by_index_keep_the_others_in_order() -> None:
    document = {"items": ["a", "b", "c", "d", "e", "f"]}
    result, outcome = walk(walker((remove("rm"), ["items[1]", "items[3]", "items[4]"])), document)
    assert result == {"items": ["a", "c", "f"]}
    assert outcome.rule_hits == {"rm": 3}
    assert sorted(outcome.changes or []) == [
        ("rm", "items[1]"),
        ("rm", "items[3]"),
        ("rm", "items[4]"),
    ]


def test_several_removed_list_elements_without_index_selectors() -> None:
    # No selector names an index, so the walker takes its every-element shortcut.
    document = {"items": [1, "a", 2, "b", "c", 3, {"k": "v"}]}
    result, outcome = walk(walker((remove("strings", str), ["items[*]"])), document)
    assert result == {"items": [1, 2, 3, {"k": "v"}]}
    assert outcome.rule_hits == {"strings": 3}
    assert outcome.changes == [
        ("strings", "items[1]"),
        ("strings", "items[3]"),
        ("strings", "items[4]"),
    ]


def test_removing_inside_list_elements_then_removing_elements() -> None:
    document = {"events": [{"ip": "1", "x": 1}, {"ip": "2"}, {"ip": "3", "x": 3}]}
    field_walker = walker(
        (remove("drop-ip"), ["events[*].ip"]),
        (remove("drop-second"), ["events[1]"]),
    )
    result, outcome = walk(field_walker, document)
    assert result == {"events": [{"x": 1}, {"x": 3}]}
    assert outcome.rule_hits == {"drop-ip": 2, "drop-second": 1}


def test_removing_the_root_gives_none() -> None:
    result, outcome = walk(walker((remove("all"), ["**"])), {"a": 1})
    assert result is None
    assert outcome.rule_hits == {"all": 1}
    assert outcome.changes == [("all", "$")]


# --- order and types -------------------------------------------------------------------


def test_rules_apply_in_written_order_whatever_the_selector_order() -> None:
    document = {"a": "x"}
    forward = walker(
        (transform("one", suffix("1")), ["a"]), (transform("two", suffix("2")), ["**"])
    )
    backward = walker(
        (transform("two", suffix("2")), ["**"]), (transform("one", suffix("1")), ["a"])
    )
    assert walk(forward, dict(document))[0] == {"a": "x12"}
    assert walk(backward, dict(document))[0] == {"a": "x21"}


def test_a_remove_before_a_transform_ends_the_value() -> None:
    field_walker = walker((remove("rm"), ["a"]), (transform("t", suffix("!")), ["a"]))
    result, outcome = walk(field_walker, {"a": "x", "b": "y"})
    assert result == {"b": "y"}
    assert outcome.rule_hits == {"rm": 1}


def test_a_transform_before_a_remove_is_counted_too() -> None:
    field_walker = walker((transform("t", suffix("!")), ["a"]), (remove("rm"), ["a"]))
    result, outcome = walk(field_walker, {"a": "x", "b": "y"})
    assert result == {"b": "y"}
    assert outcome.rule_hits == {"t": 1, "rm": 1}
    assert outcome.changes == [("t", "a"), ("rm", "a")]


def test_type_restricted_rules_skip_other_types() -> None:
    field_walker = walker(
        (remove("rm-int", int), ["**.v"]),
        (transform("mark-str", suffix("*"), str), ["**.v"]),
    )
    document = {"a": {"v": 1}, "b": {"v": "s"}, "c": {"v": True}, "d": {"v": [1]}}
    result, outcome = walk(field_walker, document)
    # bool is not int here: ``types`` compares exact types.
    assert result == {"a": {}, "b": {"v": "s*"}, "c": {"v": True}, "d": {"v": [1]}}
    assert outcome.rule_hits == {"rm-int": 1, "mark-str": 1}


def test_an_unchanged_value_is_not_a_hit_but_a_changed_type_is() -> None:
    def to_int(value: Any, _outcome: Outcome) -> Any:
        return int(value)

    result, outcome = walk(walker((transform("int", to_int), ["**.n"])), {"n": 1.0, "m": {"n": 2}})
    assert result == {"n": 1, "m": {"n": 2}}
    assert type(result["n"]) is int
    assert outcome.rule_hits == {"int": 1}
    assert outcome.changes == [("int", "n")]


def test_states_first_met_by_a_later_document_get_their_own_rules() -> None:
    # The walker remembers per automaton state the one plain transform it applies; the
    # states a later document leads to (deeper, or accepting two rules) are new to it.
    field_walker = walker(
        (transform("a", suffix("-a")), ["**.a"]),
        (transform("b", suffix("-b")), ["x.**.b", "**.ab"]),
        (transform("ab", suffix("-ab")), ["**.ab"]),
    )
    first, _ = walk(field_walker, {"a": "1"})
    second, outcome = walk(field_walker, {"x": {"y": {"b": "2", "a": "3"}}, "ab": "4"})
    assert first == {"a": "1-a"}
    assert second == {"x": {"y": {"b": "2-b", "a": "3-a"}}, "ab": "4-b-ab"}
    assert outcome.rule_hits == {"a": 1, "b": 2, "ab": 1}


def test_transforms_leave_containers_alone() -> None:
    result, outcome = walk(walker((transform("t", suffix("!")), ["a"])), {"a": {"b": "x"}})
    assert result == {"a": {"b": "x"}}
    assert outcome.rule_hits == {}


def test_keep_prunes_everything_the_allowlist_does_not_reach() -> None:
    document = {"ctx": {"app": {"name": "n", "build": 3}, "os": "linux", "ip": "1.2.3.4"}}
    result, outcome = walk(walker((keep("only", "os", "app.name"), ["ctx"])), document)
    assert result == {"ctx": {"app": {"name": "n"}, "os": "linux"}}
    assert outcome.rule_hits == {"only": 2}
    assert outcome.changes == [("only", "ctx")]


def test_pruned_counts_what_remove_and_keep_rules_took_away_only() -> None:
    rules = walker(
        (remove("rm"), ["a.secret"]),
        (transform("up", suffix("!")), ["a.name"]),
        (keep("only", "os"), ["ctx"]),
    )
    outcome = Outcome()
    assert rules.pruned(outcome) == 0
    document = {"a": {"secret": 1, "name": "n"}, "ctx": {"os": "linux", "ip": "1.2.3.4"}}
    rules.walk_root(document, outcome, None, None)
    assert document == {"a": {"name": "n!"}, "ctx": {"os": "linux"}}
    assert rules.pruned(outcome) == 2


def test_without_a_path_no_changes_are_listed() -> None:
    outcome = Outcome()
    document = {"a": "x"}
    walker((transform("t", suffix("!")), ["a"])).walk_root(document, outcome, None, None)
    assert document == {"a": "x!"}
    assert outcome.rule_hits == {"t": 1}
    assert outcome.changes is None


# --- limits and skip -------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    """``depth`` dicts inside each other, innermost holding a string."""
    document: dict[str, Any] = {"v": "x"}
    for _ in range(depth - 1):
        document = {"d": document}
    return document


def test_max_depth_counts_the_containers_walked() -> None:
    field_walker = walker((transform("t", suffix("!")), ["**.v"]), max_depth=4)
    result, _ = walk(field_walker, nested(4))
    assert result == {"d": {"d": {"d": {"v": "x!"}}}}
    with pytest.raises(LimitExceeded) as raised:
        walk(field_walker, nested(5))
    assert (raised.value.codec, raised.value.limit) == ("engine", "max_depth")
    assert str(raised.value) == "engine: nesting deeper than 4"


def test_max_depth_holds_in_lists_too() -> None:
    field_walker = walker((remove("rm"), ["**.v"]), max_depth=3)
    walk(field_walker, [[{"v": 1}]])
    with pytest.raises(LimitExceeded):
        walk(field_walker, [[[{"v": 1}]]])


def test_subtrees_no_selector_reaches_are_not_walked_so_not_limited() -> None:
    field_walker = walker((remove("rm"), ["a.b"]), max_depth=2)
    document = {"a": {"b": 1}, "deep": nested(50)}
    result, _ = walk(field_walker, document)
    assert result == {"a": {}, "deep": nested(50)}


def test_a_skipped_root_is_returned_untouched() -> None:
    document = [{"v": "x"}]
    result, outcome = walk(walker((remove("rm"), ["**.v"])), document, frozenset({id(document)}))
    assert result is document
    assert document == [{"v": "x"}]
    assert outcome.rule_hits == {}


def test_skipped_containers_are_not_descended() -> None:
    events = [{"v": "in-event"}]
    document = {"batch": events, "context": {"v": "envelope"}}
    result, outcome = walk(
        walker((transform("t", suffix("!")), ["**.v"])), document, frozenset({id(events)})
    )
    assert result == {"batch": [{"v": "in-event"}], "context": {"v": "envelope!"}}
    assert outcome.rule_hits == {"t": 1}


# --- format_path -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ([], "$"),
        (["a"], "a"),
        ([0], "[0]"),
        ([0, "a", 2, 3, "b"], "[0].a[2][3].b"),
        (["batch", 3, "context", "ip"], "batch[3].context.ip"),
    ],
)
def test_format_path(path: list[str | int], text: str) -> None:
    assert format_path(path) == text


_KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
_STEP = re.compile(r"\[(\d+)\]|\.?([A-Za-z_][A-Za-z0-9_-]*)")


@given(st.lists(st.one_of(_KEY, st.integers(min_value=0, max_value=10**6)), min_size=1))
def test_format_path_reads_back_to_the_same_steps(path: list[str | int]) -> None:
    text = format_path(path)
    steps: list[str | int] = [int(index) if index else key for index, key in _STEP.findall(text)]
    assert steps == path
    assert "".join(match.group(0) for match in _STEP.finditer(text)) == text
    assert not text.startswith(".")


# --- LATE: deferred, not applied -------------------------------------------------------


def late(rule_id: str, function: Transform, *types: type) -> FieldRule:
    return FieldRule(rule_id, FieldKind.LATE, frozenset(types), transform=function)


def walk_deferring(field_walker: FieldWalker, document: Any) -> tuple[Any, list[Any]]:
    deferred: list[Any] = []
    result = field_walker.walk_root(document, Outcome(changes=[]), None, [], deferred)
    return result, deferred


def finish(field_walker: FieldWalker, deferred: list[Any], outcome: Outcome) -> None:
    for node, key, rules, path, value in deferred:
        assert node[key] is value
        node[key] = field_walker.apply_late(rules, value, outcome, path)


def test_late_rules_are_noted_with_their_place_and_applied_after_the_walk() -> None:
    rules = walker(
        (late("cut", suffix("~")), ["a", "list[*]"]),
        (transform("up", lambda value, _: value.upper(), str), ["a"]),
    )
    document = {"a": "x", "list": ["p", {"q": 1}, "r"], "b": "y"}
    result, deferred = walk_deferring(rules, document)
    assert result == {"a": "X", "list": ["p", {"q": 1}, "r"], "b": "y"}  # "up" ran, "cut" not
    assert sorted((format_path(path), key, numbers) for _, key, numbers, path, _ in deferred) == [
        ("a", "a", (0,)),
        ("list[0]", 0, (0,)),
        ("list[2]", 2, (0,)),  # the object at [1] is no scalar: nothing to cut
    ]
    outcome = Outcome(changes=[])
    finish(rules, deferred, outcome)
    assert document == {"a": "X~", "list": ["p~", {"q": 1}, "r~"], "b": "y"}
    assert outcome.rule_hits == {"cut": 3}
    assert sorted(outcome.changes) == [("cut", "a"), ("cut", "list[0]"), ("cut", "list[2]")]


@pytest.mark.parametrize("indexed", [False, True], ids=["any-element", "by-index"])
def test_deferred_list_places_follow_removed_elements(indexed: bool) -> None:
    selectors = ["v[*]", "v[5]"] if indexed else ["v[*]"]
    rules = walker(
        (remove("rm", type(None)), ["v[*]"]),
        (late("cut", suffix("~"), str), selectors),
    )
    document = {"v": ["a", None, "b", None, None, "c", [None, "d"]]}
    _, deferred = walk_deferring(rules, document)
    finish(rules, deferred, Outcome(changes=[]))
    assert document == {"v": ["a~", "b~", "c~", [None, "d"]]}


def test_late_rules_on_the_document_itself_are_noted_without_a_container() -> None:
    rules = walker((late("cut", suffix("~")), ["**"]))
    result, deferred = walk_deferring(rules, "text")
    assert result == "text"
    assert deferred == [(None, None, (0,), [], "text")]


def test_a_removed_value_is_not_deferred() -> None:
    rules = walker((late("cut", suffix("~")), ["a"]), (remove("rm"), ["a"]))
    result, deferred = walk_deferring(rules, {"a": "x", "b": "y"})
    assert result == {"b": "y"}
    assert deferred == []


def test_late_may_change_reads_each_rules_limit() -> None:
    cut_at_5 = FieldRule("short", FieldKind.LATE, frozenset(), suffix("~"), keeps_up_to=5)
    cut_at_9 = FieldRule("long", FieldKind.LATE, frozenset(), suffix("~"), keeps_up_to=9)
    unlimited = FieldRule("any", FieldKind.LATE, frozenset(), suffix("~"))
    fields = walker((cut_at_5, ["a"]), (cut_at_9, ["b"]), (unlimited, ["c"]))
    assert not fields.late_may_change((0, 1), 5)
    assert fields.late_may_change((0, 1), 6)
    assert not fields.late_may_change((1,), 9)
    assert fields.late_may_change((2,), 0)
    assert not fields.late_may_change((), 100)
