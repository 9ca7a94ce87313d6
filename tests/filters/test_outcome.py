"""filters/outcome.py: verdict counts and the payload errors the engine raises."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.outcome import LimitExceeded, Outcome, PayloadError, Verdict


def test_new_outcome_is_unchanged_and_not_dropped():
    outcome = Outcome()
    assert not outcome.changed
    assert not outcome.all_events_dropped
    assert outcome.changes is None


@pytest.mark.parametrize(
    ("rule_hits", "events_in", "events_out", "changed", "all_dropped"),
    [
        pytest.param({}, 1, 1, False, False, id="one-event-untouched"),
        pytest.param({"hash-ids": 2}, 1, 1, True, False, id="rule-hit"),
        pytest.param({}, 3, 2, True, False, id="one-of-three-dropped"),
        pytest.param({"drop": 1}, 1, 0, True, True, id="single-event-dropped"),
        pytest.param({}, 4, 0, True, True, id="whole-batch-dropped"),
        pytest.param({}, 0, 0, False, False, id="empty-batch"),
    ],
)
def test_changed_and_all_events_dropped(rule_hits, events_in, events_out, changed, all_dropped):
    outcome = Outcome(rule_hits=Counter(rule_hits), events_in=events_in, events_out=events_out)
    assert outcome.changed is changed
    assert outcome.all_events_dropped is all_dropped


def test_detector_hits_alone_do_not_count_as_changed():
    # Detector hits always come with the rule hit of the rule that ran the detector.
    outcome = Outcome(detector_hits=Counter(email=1), events_in=1, events_out=1)
    assert not outcome.changed


def test_merge_adds_counts_and_events():
    total = Outcome(
        rule_hits=Counter(a=1), detector_hits=Counter(email=2), events_in=2, events_out=2
    )
    total.merge(
        Outcome(
            rule_hits=Counter(a=2, b=1),
            detector_hits=Counter(email=1, ipv4=3),
            events_in=3,
            events_out=1,
        )
    )
    assert total.rule_hits == Counter(a=3, b=1)
    assert total.detector_hits == Counter(email=3, ipv4=3)
    assert (total.events_in, total.events_out) == (5, 3)
    assert total.changes is None


COUNTS = st.dictionaries(st.sampled_from(["a", "b", "email", "ipv4"]), st.integers(1, 50))


@given(outcomes=st.lists(st.tuples(COUNTS, COUNTS), max_size=6))
def test_merging_adds_up_every_count(outcomes):
    total = Outcome()
    for rules, detectors in outcomes:
        total.merge(Outcome(rule_hits=Counter(rules), detector_hits=Counter(detectors)))
    assert total.rule_hits == sum((Counter(rules) for rules, _ in outcomes), Counter())
    assert total.detector_hits == sum((Counter(found) for _, found in outcomes), Counter())


def test_merge_of_an_all_dropped_document_into_a_kept_one():
    total = Outcome(events_in=1, events_out=1)
    total.merge(Outcome(rule_hits=Counter(drop=1), events_in=1, events_out=0))
    assert total.changed
    assert not total.all_events_dropped


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        pytest.param(None, None, None, id="neither-explains"),
        pytest.param(None, [], None, id="other-explains-nothing"),
        pytest.param(None, [("r", "a")], [("r", "a")], id="adopts-changes"),
        pytest.param([("r", "a")], None, [("r", "a")], id="keeps-own"),
        pytest.param([("r", "a")], [("s", "b[0]")], [("r", "a"), ("s", "b[0]")], id="appends"),
    ],
)
def test_merge_changes(mine, theirs, expected):
    outcome = Outcome(changes=None if mine is None else list(mine))
    outcome.merge(Outcome(changes=None if theirs is None else list(theirs)))
    assert outcome.changes == expected


def test_merge_does_not_alias_the_other_outcome():
    other = Outcome(rule_hits=Counter(a=1), changes=[("a", "x")])
    total = Outcome()
    total.merge(other)
    total.merge(other)
    assert total.rule_hits == Counter(a=2)
    assert total.changes == [("a", "x"), ("a", "x")]
    assert other.rule_hits == Counter(a=1)
    assert other.changes == [("a", "x")]


def test_payload_error_message_names_codec_and_reason():
    error = PayloadError("json", "unexpected end of input at byte 12")
    assert str(error) == "json: unexpected end of input at byte 12"
    assert (error.codec, error.reason) == ("json", "unexpected end of input at byte 12")
    assert isinstance(error, ValueError)


def test_limit_exceeded_is_a_payload_error_naming_its_limit():
    error = LimitExceeded("engine", "max_depth", "nesting deeper than 128")
    assert isinstance(error, PayloadError)
    assert str(error) == "engine: nesting deeper than 128"
    assert (error.codec, error.limit, error.reason) == (
        "engine",
        "max_depth",
        "nesting deeper than 128",
    )


def test_verdict_values():
    assert [verdict.value for verdict in Verdict] == [
        "forwarded",
        "scrubbed",
        "dropped",
        "blocked",
        "rejected",
    ]
