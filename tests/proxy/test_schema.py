"""proxy/schema.py: the declarative settings schema checked against the YAML node tree.

Schemas are built here, small and local, so each case shows one behaviour of a node type;
every problem is checked with its file, line, column and dotted path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.schema import (
    Checker,
    Field,
    ListOf,
    MapOf,
    Node,
    Obj,
    Problem,
    Scalar,
    Tagged,
    hide_environment_values,
    load_yaml_tree,
)

FILE = "case.yaml"


def check(
    schema: Node, text: str, environ: Mapping[str, str] | None = None
) -> tuple[Any, list[Problem]]:
    """Convert ``text`` with ``schema``; return the value and the problems, in order."""
    node, syntax = load_yaml_tree(text, FILE)
    assert syntax is None and node is not None
    checker = Checker(FILE, environ or {})
    return schema.convert(node, "", checker), checker.problems


def one_value(scalar: Scalar, text: str, environ: Mapping[str, str] | None = None) -> Any:
    """The converted value of ``value: <text>``; fails if any problem was recorded."""
    value, problems = check(Obj({"value": Field(scalar)}), f"value: {text}\n", environ)
    assert problems == []
    return value["value"]


def one_problem(scalar: Scalar, text: str, environ: Mapping[str, str] | None = None) -> Problem:
    value, problems = check(Obj({"value": Field(scalar)}), f"value: {text}\n", environ)
    assert value == {"value": None}
    assert len(problems) == 1
    return problems[0]


# --- scalars ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("10MiB", 10 * 2**20),
        ("1.5KB", 1500),
        ("1.5KiB", 1536),
        ("2kb", 2000),
        ("3GiB", 3 * 2**30),
        ("4GB", 4 * 10**9),
        ("7MB", 7 * 10**6),
        ("12B", 12),
        ("  64 KiB ", 64 * 1024),
        ('"12"', 12),
    ],
)
def test_size_accepts_plain_bytes_and_units(text: str, expected: int) -> None:
    assert one_value(Scalar("size"), text) == expected


@pytest.mark.parametrize("text", ["10XB", "'-5'", "1e3", "MiB", "ten", "[1]"])
def test_size_rejects_other_text_with_an_example(text: str) -> None:
    problem = one_problem(Scalar("size"), text)
    if text == "[1]":
        assert problem.message == "expected a size, found a list"
    else:
        assert problem.message == "expected a size in bytes, like 1048576 or 10MiB"


def test_negative_sizes_and_durations_are_stopped_by_the_minimum() -> None:
    # YAML types an unquoted -5 as an int, so the minimum (every setting has one) stops it.
    assert one_problem(Scalar("size", minimum=1), "-5").message == "must be at least 1"
    assert one_problem(Scalar("duration", minimum=0), "-1").message == "must be at least 0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5.0),
        ("2.5", 2.5),
        ("2.5s", 2.5),
        ("500ms", 0.5),
        ("10m", 600.0),
        ("72h", 72 * 3600.0),
        ("'30'", 30.0),
    ],
)
def test_duration_is_seconds_with_units(text: str, expected: float) -> None:
    value = one_value(Scalar("duration"), text)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize("text", ["5d", "-1s", "'-1'", "fast", "1h30m"])
def test_duration_rejects_other_text_with_examples(text: str) -> None:
    assert (
        one_problem(Scalar("duration"), text).message
        == "expected a duration in seconds, like 5, 2.5s, 500ms, 10m or 72h"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("yes", True),
        ("off", False),
        ("'On'", True),
        ('"NO"', False),
    ],
)
def test_bool_accepts_yaml_booleans_also_quoted(text: str, expected: bool) -> None:
    assert one_value(Scalar("bool"), text) is expected


@pytest.mark.parametrize("text", ["1", "maybe", "'0'"])
def test_bool_rejects_anything_else(text: str) -> None:
    assert one_problem(Scalar("bool"), text).message == "expected true or false"


@pytest.mark.parametrize(("text", "expected"), [("42", 42), ("'-7'", -7), ("+3", 3)])
def test_int_accepts_plain_and_quoted_integers(text: str, expected: int) -> None:
    assert one_value(Scalar("int"), text) == expected


@pytest.mark.parametrize("text", ["4.5", "true", "'x1'", "1e3"])
def test_int_rejects_non_integers(text: str) -> None:
    assert one_problem(Scalar("int"), text).message == "expected an integer"


def test_int_bounds_are_inclusive_and_named_in_the_message() -> None:
    bounded = Scalar("int", minimum=1, maximum=65535)
    assert one_value(bounded, "1") == 1
    assert one_value(bounded, "65535") == 65535
    assert one_problem(bounded, "0").message == "must be at least 1"
    assert one_problem(bounded, "65536").message == "must be at most 65535"


def test_choices_suggest_the_closest_one() -> None:
    mode = Scalar("str", choices=("scrub", "forward", "block"))
    assert one_value(mode, "forward") == "forward"
    assert (
        one_problem(mode, "scrubb").message
        == "expected one of scrub, forward, block, found 'scrubb' (did you mean 'scrub'?)"
    )
    assert one_problem(mode, "xyz").message == "expected one of scrub, forward, block, found 'xyz'"


def test_any_given_a_list_reads_well() -> None:
    problem = one_problem(Scalar("any"), "[1, 2]")
    assert not problem.message.startswith("expected a any")


def test_custom_check_reports_its_own_message() -> None:
    even = Scalar("int", check=lambda value: None if value % 2 == 0 else "must be even")
    assert one_value(even, "4") == 4
    assert one_problem(even, "5").message == "must be even"


def test_str_keeps_the_written_text_of_numbers_and_empty_means_not_set() -> None:
    assert one_value(Scalar("str"), "0755") == "0755"
    assert one_value(Scalar("str"), "1.50") == "1.50"
    assert one_value(Scalar("str"), "") is None


def test_scalar_given_a_mapping_names_what_it_found() -> None:
    problem = one_problem(Scalar("int"), "{a: 1}")
    assert problem.message == "expected an integer, found a mapping"
    assert (problem.line, problem.column, problem.path) == (1, 8, "value")


@given(st.integers(min_value=0, max_value=2**53))
def test_size_round_trips_the_text_of_any_integer(number: int) -> None:
    assert one_value(Scalar("size"), str(number)) == number
    assert one_value(Scalar("size"), f"'{number}'") == number
    assert one_value(Scalar("size"), "${SIZE}", {"SIZE": str(number)}) == number


def test_size_text_above_2_to_the_53_is_exact() -> None:
    number = 2**53 + 1
    assert one_value(Scalar("size"), f"'{number}'") == number


@given(st.integers(min_value=0, max_value=10**9))
def test_milliseconds_are_thousandths_of_a_second(number: int) -> None:
    assert math.isclose(one_value(Scalar("duration"), f"{number}ms"), number / 1000, rel_tol=1e-15)


def test_milliseconds_are_exactly_the_nearest_float() -> None:
    assert one_value(Scalar("duration"), "71ms") == 71 / 1000


# --- ${VAR} interpolation --------------------------------------------------------------


def test_interpolation_uses_the_environment_then_the_default() -> None:
    port = Scalar("int")
    assert one_value(port, "${PORT}", {"PORT": "8080"}) == 8080
    assert one_value(port, "${PORT:-9090}", {}) == 9090
    assert one_value(port, "${PORT:-9090}", {"PORT": "1"}) == 1
    assert (
        one_value(Scalar("str"), "http://${HOST}:${PORT:-80}/x", {"HOST": "h"}) == "http://h:80/x"
    )


def test_an_empty_default_means_not_set() -> None:
    assert one_value(Scalar("str"), "${KEY_FILE:-}") is None


def test_an_unset_variable_without_default_is_an_error_for_each_name() -> None:
    value, problems = check(
        Obj({"url": Field(Scalar("str"))}), "url: ${A}/${B}/${C:-c}\n", {"C": "x"}
    )
    assert value == {"url": None}
    assert [str(problem) for problem in problems] == [
        "case.yaml:1:6: url: environment variable A is not set (use ${A:-default})",
        "case.yaml:1:6: url: environment variable B is not set (use ${B:-default})",
    ]


def test_interpolated_values_are_typed_by_the_target() -> None:
    environ = {"SIZE": "2MiB", "ON": "yes", "WAIT": "250ms"}
    assert one_value(Scalar("size"), "${SIZE}", environ) == 2 * 2**20
    assert one_value(Scalar("bool"), "${ON}", environ) is True
    assert one_value(Scalar("duration"), "${WAIT}", environ) == 0.25
    assert one_problem(Scalar("int"), "${SIZE}", environ).message == "expected an integer"


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${X", {"X": "set"}, "${X"),  # no closing brace: not a reference
        ("$X", {"X": "set"}, "$X"),  # only the braced form is expanded
        ("${1X}", {}, "${1X}"),  # not a variable name
        ("${X:-${Y}}", {"Y": "y"}, "${Y}"),  # the default ends at the first '}': no nesting
        ("${X:-${Y}}", {"X": "set"}, "set}"),
        ("'${X}'", {"X": "set"}, "set"),  # quoting does not stop expansion
    ],
)
def test_malformed_and_nested_forms_are_taken_literally(
    text: str, environ: dict[str, str], expected: str
) -> None:
    assert one_value(Scalar("str"), text, environ) == expected


# --- Obj -------------------------------------------------------------------------------

SERVER = Obj(
    {
        "host": Field(Scalar("str"), default="127.0.0.1"),
        "port": Field(Scalar("int", minimum=1, maximum=65535), required=True),
        "timeout": Field(Scalar("duration"), default=5.0),
        "tags": Field(ListOf(Scalar("str"), single=True), default=list),
    }
)


def test_obj_fills_defaults_for_keys_left_out() -> None:
    value, problems = check(SERVER, "port: 80\n")
    assert problems == []
    assert value == {"port": 80, "host": "127.0.0.1", "timeout": 5.0, "tags": []}


def test_callable_defaults_give_a_fresh_value_each_time() -> None:
    first, _ = check(SERVER, "port: 1\n")
    second, _ = check(SERVER, "port: 2\n")
    assert first["tags"] == second["tags"] == []
    assert first["tags"] is not second["tags"]


def test_obj_unknown_key_suggests_the_closest_known_one() -> None:
    value, problems = check(SERVER, "port: 80\ntimeot: 3\nzzz: 1\n")
    assert value == {"port": 80, "host": "127.0.0.1", "timeout": 5.0, "tags": []}
    assert [str(problem) for problem in problems] == [
        "case.yaml:2:1: timeot: unknown key 'timeot' (did you mean 'timeout'?)",
        "case.yaml:3:1: zzz: unknown key 'zzz'",
    ]


def test_obj_missing_required_key_is_reported_at_the_mapping_and_drops_it() -> None:
    value, problems = check(Obj({"server": Field(SERVER)}), "server:\n  host: h\n")
    assert value == {"server": None}
    assert [str(problem) for problem in problems] == [
        "case.yaml:2:3: server: missing required key 'port'"
    ]


def test_a_broken_required_value_is_reported_once_not_also_as_missing() -> None:
    value, problems = check(SERVER, "port: 0\n")
    assert value is None
    assert [str(problem) for problem in problems] == ["case.yaml:1:7: port: must be at least 1"]


def test_a_required_key_with_an_empty_value_needs_a_value() -> None:
    schema = Obj({"name": Field(Scalar("str"), required=True)})
    value, problems = check(schema, "name: ${NAME:-}\n")
    assert value is None
    assert [str(problem) for problem in problems] == ["case.yaml:1:7: name: 'name' needs a value"]


def test_obj_key_given_twice_is_an_error_at_the_second() -> None:
    value, problems = check(SERVER, "port: 1\nport: 2\n")
    assert value["port"] == 1
    assert [str(problem) for problem in problems] == ["case.yaml:2:1: port: 'port' is given twice"]


def test_obj_given_a_list_names_what_it_found() -> None:
    value, problems = check(Obj({"server": Field(SERVER)}), "server: [1]\n")
    assert value == {"server": None}
    assert [str(problem) for problem in problems] == [
        "case.yaml:1:9: server: expected a mapping, found a list"
    ]


def test_obj_defaults_recurse_into_nested_objects() -> None:
    schema = Obj(
        {
            "limits": Field(Obj({"depth": Field(Scalar("int"), default=64)})),
            "name": Field(Scalar("str"), default="x"),
        }
    )
    assert schema.defaults() == {"limits": {"depth": 64}, "name": "x"}


# --- ListOf and MapOf ------------------------------------------------------------------


def test_list_single_value_form_is_a_list_of_one() -> None:
    value, problems = check(SERVER, "port: 1\ntags: solo\n")
    assert problems == []
    assert value["tags"] == ["solo"]


def test_list_without_single_form_rejects_a_scalar() -> None:
    value, problems = check(Obj({"items": Field(ListOf(Scalar("int")))}), "items: 3\n")
    assert value == {"items": None}
    assert [str(problem) for problem in problems] == [
        "case.yaml:1:8: items: expected a list, found a scalar"
    ]


def test_list_items_carry_their_index_and_broken_ones_are_left_out() -> None:
    schema = Obj({"ports": Field(ListOf(Scalar("int", minimum=1), min_items=1))})
    value, problems = check(schema, "ports:\n  - 80\n  - 0\n  - x\n  - 443\n")
    assert value == {"ports": [80, 443]}
    assert [str(problem) for problem in problems] == [
        "case.yaml:3:5: ports[1]: must be at least 1",
        "case.yaml:4:5: ports[2]: expected an integer",
    ]


def test_list_min_items() -> None:
    schema = Obj({"ports": Field(ListOf(Scalar("int"), min_items=2))})
    value, problems = check(schema, "ports: [1]\n")
    assert value == {"ports": [1]}
    assert [str(problem) for problem in problems] == [
        "case.yaml:1:8: ports: needs at least 2 item(s)"
    ]


def test_map_names_follow_the_pattern_and_are_unique() -> None:
    schema = Obj({"policies": Field(MapOf(Obj({"level": Field(Scalar("int"), default=0)})))})
    text = "policies:\n  a.b-c_1: {level: 2}\n  _bad: {}\n  'x y': {}\n  a.b-c_1: {}\n"
    value, problems = check(schema, text)
    assert value == {"policies": {"a.b-c_1": {"level": 2}}}
    assert [str(problem) for problem in problems] == [
        "case.yaml:3:3: policies._bad: names use letters, digits, '_', '-' and '.'",
        "case.yaml:4:3: policies.x y: names use letters, digits, '_', '-' and '.'",
        "case.yaml:5:3: policies.a.b-c_1: 'a.b-c_1' is defined twice",
    ]


def test_problems_deep_in_the_tree_carry_the_full_dotted_path() -> None:
    schema = Obj({"policies": Field(MapOf(Obj({"rules": Field(ListOf(SERVER))})))})
    text = "policies:\n  web:\n    rules:\n      - port: 1\n      - port: 2\n        hots: h\n"
    _, problems = check(schema, text)
    assert [str(problem) for problem in problems] == [
        "case.yaml:6:9: policies.web.rules[1].hots: unknown key 'hots' (did you mean 'host'?)"
    ]


# --- Tagged ----------------------------------------------------------------------------

ACTIONS = ("remove", "truncate", "redact")
# As in proxy/settings.py, the tag is itself one of the common fields (with its doc).
RULE = Tagged(
    tag="action",
    common={
        "id": Field(Scalar("str"), required=True),
        "action": Field(Scalar("str", choices=ACTIONS), required=True),
        "select": Field(ListOf(Scalar("str"), single=True), default=lambda: ["**"]),
    },
    variants={
        "remove": {},
        "truncate": {"max_length": Field(Scalar("int", minimum=1), required=True)},
        "redact": {"replacement": Field(Scalar("str"), default="[redacted]")},
    },
)
RULES = Obj({"rules": Field(ListOf(RULE))})


def test_tagged_variant_adds_its_own_fields_and_defaults() -> None:
    text = (
        "rules:\n"
        "  - {id: a, action: remove, select: x}\n"
        "  - {id: b, action: truncate, max_length: 8}\n"
        "  - {id: c, action: redact}\n"
    )
    value, problems = check(RULES, text)
    assert problems == []
    assert value == {
        "rules": [
            {"id": "a", "action": "remove", "select": ["x"]},
            {"id": "b", "action": "truncate", "max_length": 8, "select": ["**"]},
            {"id": "c", "action": "redact", "replacement": "[redacted]", "select": ["**"]},
        ]
    }


def test_tagged_rejects_keys_of_another_variant() -> None:
    value, problems = check(RULES, "rules:\n  - {id: a, action: remove, max_length: 3}\n")
    assert value == {"rules": [{"id": "a", "action": "remove", "select": ["**"]}]}
    assert [str(problem) for problem in problems] == [
        "case.yaml:2:29: rules[0].max_length: unknown key 'max_length'"
    ]


def test_tagged_missing_variant_field_drops_the_entry() -> None:
    value, problems = check(RULES, "rules:\n  - {id: a, action: truncate}\n")
    assert value == {"rules": []}
    assert [str(problem) for problem in problems] == [
        "case.yaml:2:5: rules[0]: missing required key 'max_length'"
    ]


def test_tagged_unknown_tag_suggests_a_variant() -> None:
    value, problems = check(RULES, "rules:\n  - id: a\n    action: remvoe\n")
    assert value == {"rules": []}
    assert [str(problem) for problem in problems] == [
        "case.yaml:3:13: rules[0].action: expected one of remove, truncate, redact, "
        "found 'remvoe' (did you mean 'remove'?)"
    ]


def test_tagged_without_its_tag_is_an_error_at_the_mapping() -> None:
    value, problems = check(RULES, "rules:\n  - id: a\n")
    assert value == {"rules": []}
    assert [str(problem) for problem in problems] == [
        "case.yaml:2:5: rules[0]: missing required key 'action'"
    ]


# --- places ----------------------------------------------------------------------------


def test_marks_place_a_path_at_its_nearest_written_ancestor() -> None:
    node, _ = load_yaml_tree("a:\n  b:\n    - 1\n", FILE)
    assert node is not None
    checker = Checker(FILE, {})
    schema = Obj({"a": Field(Obj({"b": Field(ListOf(Scalar("int")))}))})
    schema.convert(node, "", checker)
    marks = checker.marks
    # A path is placed at its value: ``a`` at the mapping under it, ``a.b`` at the list.
    assert marks.place("a.b[0]") == (3, 7)
    assert marks.place("a.b[7].c") == (3, 5)
    assert marks.place("a.zzz") == (2, 3)
    assert marks.place("other") == (1, 1)
    assert str(marks.problem("a.b[9]", "bad")) == "case.yaml:3:5: a.b[9]: bad"


def test_problem_at_top_level_says_so() -> None:
    assert str(Problem(FILE, 1, 1, "", "empty")) == "case.yaml:1:1: (top level): empty"


def test_yaml_syntax_error_is_one_problem_with_its_place() -> None:
    node, problem = load_yaml_tree("a: [1, 2\nb: 3\n", FILE)
    assert node is None and problem is not None
    assert (problem.file, problem.path) == (FILE, "")
    assert (problem.line, problem.column) == (2, 2)
    assert problem.message.startswith("invalid YAML: ")


# --- values from the environment -------------------------------------------------------


def test_values_from_the_environment_are_recorded_by_variable_not_defaults() -> None:
    schema = Obj({"a": Field(Scalar("str")), "b": Field(Scalar("str"))})
    node, _ = load_yaml_tree("a: ${A}\nb: ${B:-written-in-file}\n", FILE)
    assert node is not None
    checker = Checker(FILE, {"A": "from-env-value"})
    schema.convert(node, "", checker)
    assert checker.from_environment == {"from-env-value": "A"}


def test_hiding_environment_values_names_the_variable_in_every_quoted_form() -> None:
    problems = [
        Problem(FILE, 1, 1, "a", "unknown name 'tok\\\\en-1234' (did you mean 'x'?)"),
        Problem(FILE, 2, 1, "b", "port 80 and value tok\\en-1234 and 80"),
    ]
    hidden = hide_environment_values(problems, {"tok\\en-1234": "TOKEN", "80": "PORT"})
    assert [problem.message for problem in hidden] == [
        "unknown name '${TOKEN}' (did you mean 'x'?)",
        "port 80 and value ${TOKEN} and 80",
    ]
    assert [(problem.line, problem.path) for problem in hidden] == [(1, "a"), (2, "b")]
