"""filters/late.py: truncate rules run on strings the detector sweep has been through."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from filters.actions import Truncate
from tests.filters.test_plan import plan, rule

NOTE = "properties.note"


def sweep(rule_id: str = "sweep", *detectors: str):
    return rule(
        rule_id, "redact", detectors=list(detectors or ["email", "card"]), organization=False
    )


def cut(max_length: int):
    return rule("cut", "truncate", NOTE, max_length=max_length, suffix="~")


def test_a_value_across_the_cut_is_redacted_whole_before_cutting():
    note = "write to alice.smith@example.com today"
    result = plan(cut(20), sweep()).scrub({"properties": {"note": note}})
    assert result.value == {"properties": {"note": "write to [email] to~"}}
    assert dict(result.outcome.rule_hits) == {"sweep": 1, "cut": 1}
    assert dict(result.outcome.detector_hits) == {"email": 1}


def test_a_value_redacted_to_within_the_limit_is_not_counted_as_cut():
    note = "mail alice.smith@example.com"
    result = plan(cut(20), sweep()).scrub({"properties": {"note": note}})
    assert result.value == {"properties": {"note": "mail [email]"}}
    assert dict(result.outcome.rule_hits) == {"sweep": 1}


def test_hits_are_counted_once_per_occurrence_like_the_sweep_of_the_document():
    events = [
        {"properties": {"note": "a@example.com and 4111 1111 1111 1111"}, "m": "b@example.com"},
        {"properties": {"note": "a@example.com and 4111 1111 1111 1111"}},
        {"properties": {"note": 17}},
    ]
    result = plan(cut(100), sweep()).scrub({"batch": events}, "batch[*]")
    assert dict(result.outcome.detector_hits) == {"email": 3, "card": 2}
    assert dict(result.outcome.rule_hits) == {"sweep": 5}
    assert [event["properties"]["note"] for event in result.value["batch"]] == [
        "[email] and [card]",
        "[email] and [card]",
        17,
    ]


def test_explain_names_the_sweep_and_the_cut_on_their_paths():
    note = "write to alice.smith@example.com today"
    result = plan(cut(20), sweep()).scrub(
        {"batch": [{"properties": {"note": note}}]}, "batch[*]", explain=True
    )
    assert result.outcome.changes == [
        ("sweep", "batch[0].properties.note"),
        ("cut", "batch[0].properties.note"),
    ]


def test_each_sweep_rule_counts_its_own_detectors():
    policy = plan(cut(100), sweep("mail", "email"), sweep("cards", "card"))
    result = policy.scrub({"properties": {"note": "a@example.com 4111111111111111"}})
    assert result.value == {"properties": {"note": "[email] [card]"}}
    assert dict(result.outcome.rule_hits) == {"mail": 1, "cards": 1}


def test_without_a_sweep_truncate_only_cuts():
    result = plan(cut(10)).scrub({"properties": {"note": "a@example.com is long"}})
    assert result.value == {"properties": {"note": "a@example~"}}
    assert dict(result.outcome.rule_hits) == {"cut": 1}


WORDS = st.sampled_from(
    ["lorem", "a@example.com", "bob.jones@mail.example.org", "4111 1111 1111 1111", "x", "-"]
)


@given(st.lists(WORDS, max_size=12).map(" ".join), st.integers(2, 60))
def test_same_as_sweeping_the_document_then_cutting(note, max_length):
    document = {"properties": {"note": note}, "other": note}
    swept = plan(sweep()).scrub(orjson.loads(orjson.dumps(document))).value
    expected = Truncate(max_length, "~").apply(swept["properties"]["note"])
    result = plan(cut(max_length), sweep()).scrub(document)
    assert result.value == {"properties": {"note": expected}, "other": swept["other"]}
