"""Backpressure accounting: requests in flight and buffered body bytes."""

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from proxy.admission import Admission
from proxy.settings import parse_settings

MINIMAL = """
version: 1
listeners: [{name: main, port: 0}]
limits: {max_concurrent_requests: 2, max_buffered_bytes: 4096}
routes: [{name: r, upstream: "http://127.0.0.1:1", category: analytics, mode: forward}]
"""
LIMITS = parse_settings(MINIMAL, "t.yaml", {}).limits


def test_saturated_once_in_flight_reaches_the_limit():
    admission = Admission()
    assert not admission.saturated(LIMITS)
    admission.in_flight = 2
    assert admission.saturated(LIMITS)


def test_reservations_share_the_process_wide_byte_budget():
    admission = Admission()
    with admission.reservation(LIMITS) as first:
        assert first.grow(3000)
        with admission.reservation(LIMITS) as second:
            assert not second.grow(2000)
            assert second.size == 0
            assert second.grow(1096)
            assert admission.buffered == 4096
        assert admission.buffered == 3000
        assert first.grow(100)  # already holds more than that
        assert admission.buffered == 3000
    assert admission.buffered == 0


@given(st.lists(st.integers(min_value=0, max_value=6000), max_size=30))
def test_buffered_bytes_never_exceed_the_limit_and_return_to_zero(sizes):
    admission = Admission()
    limits = replace(LIMITS, max_buffered_bytes=4096)
    reservations = [admission.reservation(limits) for _ in sizes]
    for reservation, size in zip(reservations, sizes, strict=True):
        reservation.grow(size)
        assert admission.buffered <= 4096
    for reservation in reservations:
        reservation.release()
    assert admission.buffered == 0
