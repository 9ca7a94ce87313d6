"""filters/selectors.py: the grammar and the path automaton."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.selectors import PathAutomaton, SelectorError, StepKind, parse_selector


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("userId", ["key"]),
        ("context.ip", ["key", "key"]),
        ("batch[*].userId", ["key", "any-index", "key"]),
        ("a[2]", ["key", "index"]),
        ("a.*.b", ["key", "any", "key"]),
        ("**.email", ["deep", "key"]),
        ("**.*password*", ["deep", "glob"]),
        ('headers."x-api.key"', ["key", "key"]),
        ('headers["x-api.key"]', ["key", "key"]),
        ("**", ["deep"]),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_parse_selector_steps(text, kinds):
    assert [step.kind.value for step in parse_selector(text).steps] == kinds


@pytest.mark.parametrize(
    "text",
    ["", " a", "a.", ".a", "a..b", "a[", "a[x]", 'a."b', "a**b", "a[*]b", '""'],
    ids=repr,
)
def test_parse_selector_rejects(text):
    with pytest.raises(SelectorError):
        parse_selector(text)


def _matches(selectors, path, ignore_case=False):
    automaton = PathAutomaton([parse_selector(text, ignore_case=ignore_case) for text in selectors])
    state = automaton.start
    for step in path:
        state = automaton.step(state, step)
        if state == PathAutomaton.DEAD:
            return ()
    return automaton.accepts(state)


@pytest.mark.parametrize(
    ("selector", "path", "expected"),
    [
        ("context.ip", ["context", "ip"], True),
        ("context.ip", ["context"], False),
        ("context.ip", ["context", "ip", "x"], False),
        ("batch[*].userId", ["batch", 7, "userId"], True),
        ("batch[*].userId", ["batch", "x", "userId"], False),
        ("a.*.b", ["a", "k", "b"], True),
        ("a.*.b", ["a", 3, "b"], True),
        ("a[2]", ["a", 2], True),
        ("a[2]", ["a", 3], False),
        ("**.email", ["email"], True),
        ("**.email", ["a", 1, "b", "email"], True),
        ("**.email", ["a", "emails"], False),
        ("**.*password*", ["user", "newPassword"], False),
        ("**.*password*", ["user", "new_password_hint"], True),
        ("**", [], True),
        ("**", ["a", 0, "b"], True),
        ("a.**.z", ["a", "z"], True),
        ("a.**.z", ["a", "b", "c", "z"], True),
        ("user?id", ["user_id"], True),
    ],
    ids=lambda value: str(value),
)
def test_automaton_matches(selector, path, expected):
    assert bool(_matches([selector], path)) is expected


def test_ignore_case_applies_to_keys_and_globs():
    assert _matches(["**.*password*"], ["user", "newPassword"], ignore_case=True)
    assert _matches(["Context.IP"], ["context", "ip"], ignore_case=True)
    assert not _matches(["Context.IP"], ["context", "ip"])


def test_accepts_lists_every_matching_label_once():
    selectors = [parse_selector(text) for text in ("a.b", "**.b", "a.*", "x")]
    automaton = PathAutomaton(selectors, labels=[0, 0, 1, 2])
    state = automaton.step(automaton.step(automaton.start, "a"), "b")
    assert automaton.accepts(state) == (0, 1)


def test_dead_subtrees_are_skipped():
    automaton = PathAutomaton([parse_selector("context.ip")])
    assert automaton.step(automaton.start, "properties") == PathAutomaton.DEAD
    context = automaton.step(automaton.start, "context")
    ip = automaton.step(context, "ip")
    assert automaton.descends(context) and not automaton.descends(ip)


def test_memo_is_bounded_for_hostile_keys():
    automaton = PathAutomaton([parse_selector("**.*secret*")])
    for number in range(70_000):
        automaton.step(automaton.start, f"key{number}")
    assert max(len(memo) for memo in automaton._memo) <= 65_536


_keys = st.one_of(st.text(min_size=1, max_size=6), st.integers(min_value=0, max_value=5))


@given(path=st.lists(_keys, max_size=6))
def test_deep_matches_every_path(path):
    assert _matches(["**"], path) == (0,)


@given(path=st.lists(_keys, max_size=6), key=st.text(alphabet="abc", min_size=1, max_size=3))
def test_deep_suffix_matches_exactly_when_last_key_equals(path, key):
    full = [*path, key]
    assert bool(_matches([f"**.{key}"], full)) is True
    assert bool(_matches([f"**.{key}"], [*path, key + "z"])) is False


def test_step_kinds_are_exposed():
    assert parse_selector("a").steps[0].kind is StepKind.KEY
