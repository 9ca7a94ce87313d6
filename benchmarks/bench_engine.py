"""Engine benchmark: the default policy of config.example.yaml against the orjson round trip.

    .venv/bin/python benchmarks/bench_engine.py [--seconds 2] [--profile]

Prints events/s for ``orjson.loads`` + ``orjson.dumps`` and for the full scrub (parse,
policy, detector sweep, output) on the same batches in the same run, and their ratio —
the machine is shared and noisy, so the ratio is the figure that counts. Also measures
short free-text lines through ``Plan.scrub_text`` (all detectors on).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.payloads import analytics_batch, feedback_lines  # noqa: E402
from filters.plan import Plan  # noqa: E402
from proxy.build import check_fresh, engine_build  # noqa: E402
from proxy.settings import load_settings, parse_settings  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference-payloads"


def rate(function: Callable[[], object], seconds: float) -> float:
    """Calls per second: best of several timed rounds (noise only ever slows things)."""
    function()
    rounds = max(3, int(seconds / 0.25))
    best = float("inf")
    for _ in range(rounds):
        calls = 0
        started = time.perf_counter()
        deadline = started + seconds / rounds
        while True:
            function()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = min(best, (now - started) / calls)
    return 1.0 / best


def load_plan(memo_entries: int | None = None) -> Plan:
    """The default policy; ``memo_entries=0`` turns its hash and generalize memos off."""
    path = ROOT / "config.example.yaml"
    environ = {"SCRUBGATE_HASH_KEY": "b" * 64, **os.environ}
    if memo_entries is None:
        return load_settings(path, environ).plans["default"]
    tree = yaml.safe_load(path.read_text())
    tree["limits"]["transform_memo_entries"] = memo_entries
    return parse_settings(yaml.safe_dump(tree), str(path), environ).plans["default"]


def bench_batch(name: str, body: bytes, plan: Plan, cold_plan: Plan, seconds: float) -> None:
    """One line per batch; ``memos off`` is the scrub with every hashed or generalized
    value computed afresh, as for a batch none of whose values came before (the benchmark
    scrubs the same batch again and again, so with memos on they always hit)."""
    events = len(orjson.loads(body)["batch"])
    baseline = rate(lambda: orjson.dumps(orjson.loads(body)), seconds)
    scrub = rate(lambda: plan.scrub(orjson.loads(body), "batch[*]").json, seconds)
    cold = rate(lambda: cold_plan.scrub(orjson.loads(body), "batch[*]").json, seconds)
    print(
        f"{name:<28} {len(body) / 1024:7.1f} KB  orjson {baseline * events:9,.0f} ev/s   "
        f"scrub {scrub * events:8,.0f} ev/s  ({scrub:6,.0f} req/s)   ratio 1/{baseline / scrub:.2f}"
        f"   memos off 1/{baseline / cold:.2f}"
    )


def bench_lines(plan: Plan, seconds: float) -> None:
    lines = feedback_lines()
    index = 0

    def one() -> None:
        nonlocal index
        plan.scrub_text(lines[index % len(lines)])
        index += 1

    per_second = rate(one, seconds)
    average = sum(len(line) for line in lines) / len(lines)
    print(f"{'free-text lines':<28} {average:7.0f} B   scrub_text {per_second:10,.0f} lines/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument(
        "--profile", action="store_true", help="profile the scrub of the generated batch"
    )
    args = parser.parse_args()
    check_fresh()
    plan = load_plan()
    cold_plan = load_plan(memo_entries=0)
    batches = {
        "generated batch (20 events)": orjson.dumps(analytics_batch()),
        "generated lean batch": orjson.dumps(analytics_batch(lean=True)),
    }
    for file_name in ("batch20.json", "batch20_lean.json"):
        if (REFERENCE / file_name).exists():
            batches[f"reference {file_name}"] = (REFERENCE / file_name).read_bytes()
    if args.profile:
        body = batches["generated batch (20 events)"]
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [plan.scrub(orjson.loads(body), "batch[*]") for _ in range(300)])
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return
    print(
        f"python {sys.version.split()[0]}, engine {engine_build()}, "
        "default policy of config.example.yaml, best of rounds"
    )
    for name, body in batches.items():
        bench_batch(name, body, plan, cold_plan, args.seconds)
    bench_lines(plan, args.seconds)


if __name__ == "__main__":
    main()
