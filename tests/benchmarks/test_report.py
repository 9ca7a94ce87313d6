"""benchmarks/report.py: medians over interleaved rounds, per-round ratios and their spread.

Pure functions over the dictionaries bench_proxy.py writes: the results here are built
by hand, round by round, so that every expected figure follows from the rounds given.
"""

from __future__ import annotations

import statistics

import pytest

from benchmarks.report import median_of, ratios, render, rounds_of, targets


def closed_round(rate: float, cpu_ms: float | None, p99: float = 5.0) -> dict:
    return {
        "requests": int(rate * 5),
        "requests_per_s": rate,
        "events_per_s": rate * 20,
        "latency_ms": {"p50": p99 / 2, "p99": p99},
        "cpu_ms_per_request": cpu_ms,
        "cpu_utilization": None if cpu_ms is None else 1.0,
        "other_load": None if cpu_ms is None else 0.0,
        "processes": None,
        "seconds": 5.0,
    }


def result(scenario: str, rounds: list[dict], batch: str = "33 KB") -> dict:
    """A result as bench_proxy.py builds it: the medians of its rounds, and the rounds."""
    return {
        "scenario": scenario,
        "batch": batch,
        "encoding": "plain",
        "source": "generated",
        "body_bytes": 33000,
        "json_bytes": 33000,
        "verified": scenario != "direct",
        **median_of(rounds),
        "rounds": rounds,
        "memory": None,
        "open_loop": None,
    }


def two_worker_round(rate: float, cpu_ms: float, workers: list[float], connections: list[int]):
    measured = closed_round(rate, cpu_ms)
    measured["processes"] = {
        "supervisor_cpu_seconds": 0.01,
        "worker_cpu_seconds": workers,
        "worker_connections": connections,
    }
    return measured


def test_median_of_takes_each_figure_on_its_own():
    records = [
        {"rate": 1, "latency": {"p99": 9.0}, "shares": [0.4, 0.6], "cpu": None, "name": "a"},
        {"rate": 5, "latency": {"p99": 1.0}, "shares": [0.5, 0.5], "cpu": 1.0, "name": "b"},
        {"rate": 3, "latency": {"p99": 4.0}, "shares": [0.7, 0.3], "cpu": 2.0, "name": "c"},
    ]

    assert median_of(records) == {
        "rate": 3,
        "latency": {"p99": 4.0},
        "shares": [0.5, 0.5],
        "cpu": None,
        "name": "a",
    }
    assert median_of([1.0, 2.0, 4.0, 10.0]) == 3.0
    assert median_of([records[1]]) == records[1]
    assert median_of([True, False, False]) is True  # not a figure: the first record's


def test_closed_loop_figures_are_the_medians_of_the_rounds():
    measured = result(
        "forward",
        [
            closed_round(900, 0.25, p99=7.0),
            closed_round(1000, 0.2, p99=3.0),
            closed_round(500, 0.4),
        ],
    )

    assert measured["requests_per_s"] == 900
    assert measured["events_per_s"] == 18000
    assert measured["cpu_ms_per_request"] == 0.25
    assert measured["latency_ms"] == {"p50": 2.5, "p99": 5.0}
    assert len(rounds_of(measured)) == 3


def test_ratios_are_per_round_then_the_median():
    passthrough = result(
        "passthrough", [closed_round(1000, 0.2), closed_round(2000, 0.2), closed_round(1500, 0.2)]
    )
    forward = result(
        "forward", [closed_round(900, 0.25), closed_round(1000, 0.2), closed_round(1500, 0.4)]
    )

    (row,) = ratios([passthrough, forward])

    assert row["forward_vs_passthrough_rounds"] == pytest.approx([0.9, 0.5, 1.0])
    assert row["forward_vs_passthrough"] == pytest.approx(0.9)
    # not the ratio of the medians (1000 / 1500): rounds are paired by their index
    assert row["forward_vs_passthrough"] != pytest.approx(
        forward["requests_per_s"] / passthrough["requests_per_s"]
    )
    assert row["forward_vs_passthrough_by_cpu_rounds"] == pytest.approx([0.8, 1.0, 0.5])
    assert row["forward_vs_passthrough_by_cpu"] == pytest.approx(0.8)
    assert "scrub_vs_roundtrip" not in row


def test_a_result_without_rounds_is_one_round():
    passthrough = {"scenario": "passthrough", "batch": "33 KB", "encoding": "plain"}
    passthrough |= closed_round(1000, 0.2)
    forward = {"scenario": "forward", "batch": "33 KB", "encoding": "plain"}
    forward |= closed_round(880, 0.25)

    (row,) = ratios([passthrough, forward])

    assert row["forward_vs_passthrough"] == pytest.approx(0.88)
    assert row["forward_vs_passthrough_rounds"] == pytest.approx([0.88])
    assert row["forward_vs_passthrough_by_cpu"] == pytest.approx(0.8)


def test_two_workers_are_compared_round_by_round_then_the_median():
    one = result("scrub", [closed_round(200, 5.0), closed_round(180, 5.5), closed_round(220, 4.5)])
    several = result(
        "scrub-2w",
        [
            two_worker_round(400, 5.0, [0.9, 1.1], [7, 9]),
            two_worker_round(300, 6.0, [1.0, 1.0], [8, 8]),
            two_worker_round(420, 5.0, [1.2, 0.8], [10, 6]),
        ],
    )

    (row,) = ratios([one, several])

    per_round = row["two_workers_rounds"]
    assert [entry["vs_one"] for entry in per_round] == pytest.approx([2.0, 300 / 180, 420 / 220])
    assert [entry["efficiency"] for entry in per_round] == pytest.approx([1.0, 5.5 / 6, 0.9])
    projected = [2000 / 1.1 / 200, 1500 / 1.0 / (1000 / 5.5), 2100 / 1.2 / (1000 / 4.5)]
    assert [entry["projected"] for entry in per_round] == pytest.approx(projected)
    two = row["two_workers"]
    assert two["vs_one"] == pytest.approx(420 / 220)
    assert two["efficiency"] == pytest.approx(5.5 / 6)
    assert two["projected"] == pytest.approx(statistics.median(projected))
    assert two["worker_connections"] == [8, 8]
    assert two["worker_shares"] == pytest.approx([0.5, 0.5])


def test_targets_use_the_median_ratio_and_show_the_spread():
    passthrough = result(
        "passthrough", [closed_round(1000, 0.2), closed_round(1000, 0.2), closed_round(1000, 0.2)]
    )
    forward = result(
        "forward", [closed_round(840, 0.24), closed_round(910, 0.22), closed_round(930, 0.21)]
    )
    rows = ratios([passthrough, forward])

    (check,) = targets([passthrough, forward], rows)

    assert check == {
        "target": "forward >= 90% of passthrough, 33 KB plain",
        "measured": "91% [84-93%]",
        "met": True,
    }


def report_of(results: list[dict], rounds: int) -> dict:
    rows = ratios(results)
    machine = {
        "date": "2026-11-25",
        "cpu_model": "test CPU",
        "cpus": 2,
        "kernel": "6.0",
        "pinning": "proxy on CPU 0",
        "python": "3.11",
        "aiohttp": "3",
        "orjson": "3",
        "hyperscan": None,
        "uvloop": None,
        "scrubgate_uvloop": None,
        "baseline_loop": "asyncio",
        "generator": "bundled loadgen.py",
        "workers_setting": "workers: 1",
    }
    options = {
        "connections": 16,
        "memory_connections": 64,
        "duration": 5,
        "retries": 2,
        "rounds": rounds,
        "payloads": ["generated"],
    }
    return {
        "machine": machine,
        "options": options,
        "results": results,
        "ratios": rows,
        "targets": targets(results, rows),
    }


def test_render_shows_the_rounds_spread_of_both_ratios():
    passthrough = result(
        "passthrough", [closed_round(1000, 0.2), closed_round(1000, 0.2), closed_round(1000, 0.2)]
    )
    forward = result(
        "forward", [closed_round(840, 0.25), closed_round(910, 0.2), closed_round(930, 0.22)]
    )

    printed = render(report_of([passthrough, forward], rounds=3))

    assert "3 interleaved rounds" in printed
    assert "91% [84-93%] (91% [80-100%])" in printed
    assert "forward >= 90% of passthrough, 33 KB plain: 91% [84-93%]" in printed


def test_render_of_one_round_has_no_spread():
    passthrough = result("passthrough", [closed_round(1000, 0.2)])
    forward = result("forward", [closed_round(880, 0.25)])

    printed = render(report_of([passthrough, forward], rounds=1))

    assert "88% (80%)" in printed and "[" not in printed
    assert "interleaved" not in printed


def test_noise_warning_looks_at_every_round():
    disturbed = closed_round(900, 0.3)
    disturbed["other_load"] = 0.4
    passthrough = result(
        "passthrough", [closed_round(1000, 0.2), disturbed, closed_round(990, 0.2)]
    )

    printed = render(report_of([passthrough], rounds=3))

    assert passthrough["other_load"] == 0.0
    assert "other processes took up to 40% of the proxy CPU" in printed
