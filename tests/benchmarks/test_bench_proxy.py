"""benchmarks/bench_proxy.py runs end to end: a smoke run, never a timing assertion.

Real processes on 127.0.0.1 (sink, load generator, proxies under test), the shortest
durations the benchmark accepts, one batch and one encoding, so the benchmark cannot rot.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_proxy import BenchError, batches, parse_options

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *options: str) -> tuple[dict, str]:
    report_file = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_proxy.py",
            "--quick",
            "--json",
            str(report_file),
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(report_file.read_text()), completed.stdout


def test_quick_run_verifies_then_measures_every_selected_proxy_in_rounds(tmp_path):
    report, printed = run_bench(
        tmp_path,
        *("--duration", "0.2", "--generator", "builtin", "--sizes", "33"),
        *("--encodings", "gzip", "--scenarios", "direct,roundtrip,scrub", "--rounds", "2"),
    )

    assert report["options"]["rounds"] == 2
    results = report["results"]
    assert [result["scenario"] for result in results] == ["direct", "roundtrip", "scrub"]
    for result in results:
        assert (result["batch"], result["encoding"]) == ("33 KB", "gzip")
        assert len(result["rounds"]) == 2
        assert all(measured["requests"] > 0 for measured in result["rounds"])
        rates = [measured["requests_per_s"] for measured in result["rounds"]]
        assert result["requests_per_s"] == pytest.approx(statistics.median(rates))
        assert result["events_per_s"] == pytest.approx(20 * result["requests_per_s"])
        assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    direct, *proxies = results
    assert direct["verified"] is False and direct["memory"] is None
    for result in proxies:
        assert result["verified"] is True
        assert result["cpu_ms_per_request"] >= 0 and 0 <= result["other_load"] <= 1
        assert set(result["memory"]) >= {"per_request_bytes", "per_request_x_body", "growth_bytes"}
        assert result["memory"]["connections"] == 64
        assert result["memory"]["run_seconds"] == pytest.approx(
            sum(measured["seconds"] for measured in result["rounds"])
        )
        assert result["open_loop"]["rate"] == pytest.approx(result["requests_per_s"] / 2)
        assert set(result["open_loop"]) >= {"p99_ms", "direct_p99_ms", "added_p99_ms"}
    (ratios,) = report["ratios"]
    per_round = [
        scrub["requests_per_s"] / roundtrip["requests_per_s"]
        for roundtrip, scrub in zip(proxies[0]["rounds"], proxies[1]["rounds"], strict=True)
    ]
    assert ratios["scrub_vs_roundtrip_rounds"] == pytest.approx(per_round)
    assert ratios["scrub_vs_roundtrip"] == pytest.approx(statistics.median(per_round))
    assert {check["target"].split(",")[0] for check in report["targets"]} == {
        "p99 added latency at half max rate <= 5 ms",
        "memory per in-flight request <= 3x body",
    }
    machine = report["machine"]
    assert machine["python"] and machine["aiohttp"] and machine["orjson"]
    assert machine["scrubgate_uvloop"] in (True, False)
    for heading in ("scrubgate scrub", "scrub / roundtrip", "open loop", "issue 7 targets"):
        assert heading in printed
    assert "2 interleaved rounds" in printed


@pytest.mark.parametrize("rounds", ["0", "-1", "two"])
def test_rounds_must_be_a_whole_number_of_at_least_one(rounds, capsys):
    with pytest.raises(SystemExit):
        parse_options(["--rounds", rounds])

    assert f"argument --rounds: {rounds!r}: a whole number of at least 1" in capsys.readouterr().err


def test_distinct_batches_are_generated_from_their_own_seeds():
    (batch,) = batches("generated", ("33",), distinct=3)
    assert len(set(batch.documents)) == 3
    assert batch.document == batch.documents[0]
    assert [len(json.loads(document)["batch"]) for document in batch.documents] == [20] * 3
    with pytest.raises(BenchError, match="--distinct needs generated payloads"):
        batches("reference", ("33",), distinct=2)


def test_quick_run_with_distinct_batches_verifies_each(tmp_path):
    report, _ = run_bench(
        tmp_path,
        *("--duration", "0.2", "--generator", "builtin", "--sizes", "33", "--distinct", "2"),
        *("--encodings", "plain", "--scenarios", "scrub"),
    )

    assert report["options"]["distinct"] == 2
    assert report["options"]["payloads"] == ["generated"]
    (result,) = report["results"]
    assert result["verified"] is True and result["requests"] > 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_quick_run_with_wrk(tmp_path):
    report, _ = run_bench(
        tmp_path,
        *("--duration", "1", "--generator", "wrk", "--sizes", "127"),
        *("--encodings", "plain", "--scenarios", "passthrough"),
    )

    (result,) = report["results"]
    assert result["scenario"] == "passthrough" and result["verified"] is True
    assert result["requests"] > 0 and result["latency_ms"]["p99"] > 0
    assert report["machine"]["generator"].startswith("wrk")


def test_two_workers_are_measured_per_process_and_projected(tmp_path):
    report, printed = run_bench(
        tmp_path,
        *("--duration", "0.5", "--generator", "builtin", "--sizes", "127"),
        *("--encodings", "plain", "--scenarios", "scrub,scrub-2w"),
    )

    one, two = report["results"]
    assert (one["scenario"], two["scenario"]) == ("scrub", "scrub-2w")
    assert one["processes"] is None and two["verified"] is True
    processes = two["processes"]
    workers = processes["worker_cpu_seconds"]
    assert len(workers) == 2 and all(seconds > 0 for seconds in workers)
    assert sum(processes["worker_connections"]) == 16
    assert two["cpu_ms_per_request"] == pytest.approx(
        (processes["supervisor_cpu_seconds"] + sum(workers)) * 1000 / two["requests"]
    )
    (row,) = report["ratios"]
    scaling = row["two_workers"]
    assert scaling["vs_one"] == pytest.approx(two["requests_per_s"] / one["requests_per_s"])
    assert scaling["efficiency"] == pytest.approx(
        one["cpu_ms_per_request"] / two["cpu_ms_per_request"]
    )
    assert scaling["worker_shares"] == pytest.approx([s / sum(workers) for s in workers])
    assert scaling["projected"] == pytest.approx(
        two["requests"] / max(workers) * one["cpu_ms_per_request"] / 1000
    )
    connections = processes["worker_connections"]
    assert scaling["projected_by_connections"] == pytest.approx(
        scaling["efficiency"] * 16 / max(connections)
    )
    (check,) = [check for check in report["targets"] if check["target"].startswith("two")]
    assert (
        check["target"] == "two workers >= 1.6x one worker (projected from CPU time), 127 KB plain"
    )
    assert check["met"] is (scaling["projected"] >= 1.6)
    for heading in ("scrubgate 2 workers", "two workers / one", "projected ="):
        assert heading in printed
