"""filters/sweep.py: hit counting and the fail-closed checks of swept JSON."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.detectors.registry import builtin_detectors
from filters.detectors.scanner import Scanner
from filters.outcome import Outcome, PayloadError
from filters.sweep import DetectorSweep, check_swept, parse_swept

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def test_count_adds_detector_and_rule_hits():
    detectors = builtin_detectors()
    sweep = DetectorSweep(
        Scanner([detectors["email"], detectors["ipv4"]]), {"email": "mail", "ipv4": "net"}
    )
    outcome = Outcome()
    sweep.count({"email": 2, "ipv4": 1}, outcome)
    sweep.count({"email": 1}, outcome)
    assert outcome.detector_hits == {"email": 3, "ipv4": 1}
    assert outcome.rule_hits == {"mail": 3, "net": 1}


@given(JSON_VALUES)
def test_canonical_json_passes_both_checks(value):
    buffer = orjson.dumps(value)
    check_swept(buffer)
    assert parse_swept(buffer) == orjson.loads(buffer)


@pytest.mark.parametrize(
    "broken",
    [
        b'{"a":"[email]"',  # cut short
        b'{"a":"[em"ail]"}',  # a quote inside a string
        b'{"a":[card]}',  # a replacement left unquoted where a number stood
        b'{"a":"\xff"}',  # not UTF-8
        b'{"a":"\\ud800"}',  # a lone surrogate
        b'{"a":"x\x01"}',  # a raw control character
        b"",
    ],
)
def test_broken_json_fails_closed_without_quoting_it(broken):
    for check in (check_swept, parse_swept):
        with pytest.raises(PayloadError) as raised:
            check(broken)
        assert str(raised.value) == "engine: detector sweep produced invalid JSON"
