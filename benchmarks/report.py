"""Tables, headline ratios and issue-7 targets of an end-to-end benchmark run.

Works on the plain dictionaries ``bench_proxy.py`` also writes with ``--json``. A result
measured in several rounds (``--rounds``) keeps each round's closed-loop figures under
``rounds``; its own figures are the medians of those (``median_of``).
"""

from __future__ import annotations

import statistics
import textwrap
from typing import Any

LABELS = {
    "direct": "direct (no proxy)",
    "passthrough": "aiohttp passthrough",
    "roundtrip": "orjson round trip",
    "forward": "scrubgate forward",
    "scrub": "scrubgate scrub",
    "scrub-2w": "scrubgate 2 workers",
}

RATIOS = (
    ("scrub_vs_roundtrip", "scrub", "roundtrip"),
    ("forward_vs_passthrough", "forward", "passthrough"),
    ("scrub_vs_passthrough", "scrub", "passthrough"),
    ("roundtrip_vs_passthrough", "roundtrip", "passthrough"),
)

Run = dict[str, Any]

SCALING_TARGET = 1.6
PROJECTION_NOTE = (
    "projected = requests of the two-worker run / CPU-seconds of its busiest worker, over "
    "one worker's requests per CPU-second: the throughput ratio with a core per worker and "
    "the load generator elsewhere, assuming the proxy is CPU-bound (each worker busy all "
    "the time). In a closed loop every worker holding a few connections stays busy, whatever "
    "the split of connections; 'by connections' = requests per CPU-second over one worker's, "
    "divided by the largest worker's share of the connections: the same if every connection "
    "brought the same load (many independent clients) and the fuller worker saturated first. "
    "The req/s ratio is disturbed by construction: the two workers share the cores with the "
    "sink and the load generator."
)


def median_of(records: list[Any]) -> Any:
    """The median of each figure of ``records`` taken on its own: numbers directly, dicts
    key by key, lists position by position; None when any record has None there; other
    values (text) from the first record. One record gives itself back."""
    first = records[0]
    if any(record is None for record in records):
        return None
    if isinstance(first, dict):
        return {key: median_of([record[key] for record in records]) for key in first}
    if isinstance(first, list):
        return [median_of(list(column)) for column in zip(*records, strict=True)]
    if isinstance(first, int | float) and not isinstance(first, bool):
        return statistics.median(records)
    return first


def rounds_of(result: Run) -> list[Run]:
    """The closed-loop rounds of ``result``: its ``rounds``, or itself when it has none
    (a report written before ``--rounds`` existed)."""
    return result.get("rounds") or [result]


def ratios(results: list[Run]) -> list[Run]:
    """Per batch and encoding, the req/s of one scenario over another's, and the same
    ratio computed from CPU time per request (``<name>_by_cpu``): requests per CPU-second,
    which other load on a shared machine disturbs less than req/s. Each is computed per
    round, from the two runs of the same round (measured close in time), and given as the
    median of the rounds; the per-round values are kept in ``<name>_rounds`` and
    ``<name>_by_cpu_rounds``."""
    cells: dict[tuple[str, str], dict[str, Run]] = {}
    for result in results:
        cells.setdefault((result["batch"], result["encoding"]), {})[result["scenario"]] = result
    rows = []
    for (batch, encoding), runs in cells.items():
        row: Run = {"batch": batch, "encoding": encoding}
        for name, numerator, denominator in RATIOS:
            if numerator in runs and denominator in runs:
                row |= _ratio_over_rounds(name, runs[numerator], runs[denominator])
        if "scrub" in runs and runs.get("scrub-2w", {}).get("processes"):
            row |= _two_workers_over_rounds(runs["scrub-2w"], runs["scrub"])
        rows.append(row)
    return rows


def _ratio_over_rounds(name: str, top: Run, bottom: Run) -> Run:
    pairs = list(zip(rounds_of(top), rounds_of(bottom), strict=False))
    by_rate = [high["requests_per_s"] / low["requests_per_s"] for high, low in pairs]
    by_cpu = [_cpu_ratio(high, low) for high, low in pairs]
    return {
        name: median_of(by_rate),
        f"{name}_by_cpu": median_of(by_cpu),
        f"{name}_rounds": by_rate,
        f"{name}_by_cpu_rounds": by_cpu,
    }


def _cpu_ratio(top: Run, bottom: Run) -> float | None:
    """Requests per CPU-second of ``top`` over ``bottom``'s; None without CPU times."""
    cpu = top["cpu_ms_per_request"]
    return bottom["cpu_ms_per_request"] / cpu if cpu else None


def _two_workers_over_rounds(several: Run, one: Run) -> Run:
    """``two_workers`` computed per round (same round index) and, as ``two_workers``, the
    median of each of its figures over the rounds."""
    pairs = zip(rounds_of(several), rounds_of(one), strict=False)
    per_round = [two_workers(two, single) for two, single in pairs]
    return {"two_workers": median_of(per_round), "two_workers_rounds": per_round}


def two_workers(several: Run, one: Run) -> Run:
    """How a scrub run of several workers compares with one worker's (same batch and
    encoding): ``vs_one`` the req/s ratio (disturbed: the workers share the cores with the
    load side), ``efficiency`` the ratio of requests per CPU-second (all processes, the
    supervisor included), ``worker_shares`` each worker's share of the workers' CPU time,
    and ``projected`` the throughput ratio with a core per worker (``by_connections``: if
    the load followed the split of connections; see PROJECTION_NOTE)."""
    processes = several["processes"]
    workers = processes["worker_cpu_seconds"]
    busiest, total = max(workers), sum(workers)
    one_per_cpu_second = 1000 / one["cpu_ms_per_request"] if one["cpu_ms_per_request"] else None
    projected = None
    if busiest and one_per_cpu_second:
        projected = several["requests"] / busiest / one_per_cpu_second
    cpu_ms = several["cpu_ms_per_request"]
    efficiency = one["cpu_ms_per_request"] / cpu_ms if cpu_ms else None
    connections = processes["worker_connections"]
    by_connections = None
    if efficiency and sum(connections):
        by_connections = efficiency * sum(connections) / max(connections)
    return {
        "vs_one": several["requests_per_s"] / one["requests_per_s"],
        "efficiency": efficiency,
        "worker_shares": [seconds / total for seconds in workers] if total else None,
        "worker_connections": connections,
        "supervisor_cpu_seconds": processes["supervisor_cpu_seconds"],
        "projected": projected,
        "projected_by_connections": by_connections,
    }


def targets(results: list[Run], ratio_rows: list[Run]) -> list[Run]:
    """The issue-7 targets this run measured, each with its measured value (for a ratio:
    the median of the rounds, with the range of the rounds when there were several)."""
    checks = []
    for row in ratio_rows:
        where = f"{row['batch']} {row['encoding']}"
        if "scrub_vs_roundtrip" in row and row["batch"].startswith("127"):
            value = row["scrub_vs_roundtrip"]
            name = f"scrub >= 35% of orjson round trip, {where}"
            checks.append(_check(name, _ratio_measured(row, "scrub_vs_roundtrip"), value >= 0.35))
        if "forward_vs_passthrough" in row:
            value = row["forward_vs_passthrough"]
            name = f"forward >= 90% of passthrough, {where}"
            checks.append(
                _check(name, _ratio_measured(row, "forward_vs_passthrough"), value >= 0.9)
            )
        projected = row.get("two_workers", {}).get("projected")
        if projected is not None:
            name = f"two workers >= {SCALING_TARGET}x one worker (projected from CPU time), {where}"
            checks.append(_check(name, f"{projected:.2f}x", projected >= SCALING_TARGET))
    for result in results:
        if result["scenario"] in ("forward", "scrub"):
            checks.extend(_per_proxy_targets(result))
    return checks


def _per_proxy_targets(result: Run) -> list[Run]:
    where = f"{result['scenario']}, {result['batch']} {result['encoding']}"
    checks = []
    if result.get("open_loop"):
        added = result["open_loop"]["added_p99_ms"]
        name = f"p99 added latency at half max rate <= 5 ms, {where}"
        checks.append(_check(name, f"{added:.2f} ms", added <= 5.0))
    if result.get("memory"):
        times = result["memory"]["per_request_x_body"]
        name = f"memory per in-flight request <= 3x body, {where}"
        checks.append(_check(name, f"{times:.1f}x", times <= 3.0))
    return checks


def _ratio_measured(row: Run, name: str) -> str:
    return f"{row[name]:.0%}{_spread(row.get(f'{name}_rounds'))}"


def _spread(per_round: list[float | None] | None) -> str:
    """`` [84-93%]``: the range of the per-round ratios; nothing for one round, or when a
    round has no value."""
    values = [value for value in per_round or [] if value is not None]
    if len(values) < 2 or len(values) < len(per_round or []):
        return ""
    return f" [{min(values) * 100:.0f}-{max(values):.0%}]"


def _check(target: str, measured: str, met: bool) -> Run:
    return {"target": target, "measured": measured, "met": met}


def render(report: Run) -> str:
    """The whole report as text: machine, throughput table, ratios, latency, targets."""
    parts = [
        _machine(report["machine"], report["options"]),
        _throughput(report["results"]),
        _ratio_table(report["ratios"]),
        _two_workers_table(report["ratios"]),
        _latency_table(report["results"]),
        _targets(report["targets"]),
        _noise_warning(report["results"]),
    ]
    return "\n\n".join(part for part in parts if part)


def _machine(machine: Run, options: Run) -> str:
    uvloop = machine["uvloop"] or "not installed"
    used = {True: "used", False: "not used", None: "not checked"}[machine["scrubgate_uvloop"]]
    return "\n".join(
        [
            f"{machine['date']}  {machine['cpu_model']}, {machine['cpus']} CPUs, "
            f"Linux {machine['kernel']}; {machine['pinning']}",
            f"Python {machine['python']}, aiohttp {machine['aiohttp']}, "
            f"orjson {machine['orjson']}, hyperscan {machine['hyperscan']}, uvloop {uvloop} "
            f"(scrubgate: {used}; baselines: {machine['baseline_loop']})",
            f"load: {machine['generator']}; {options['connections']} connections, "
            f"{options['duration']:g} s per run (repeated up to {options['retries']} times when"
            f" disturbed){_rounds_note(options)}; memory probe at "
            f"{options['memory_connections']} connections; scrubgate workers setting: "
            f"{machine['workers_setting']}; payloads: {', '.join(options['payloads'])}",
        ]
    )


def _rounds_note(options: Run) -> str:
    rounds = options.get("rounds", 1)
    if rounds < 2:
        return ""
    return (
        f", {rounds} interleaved rounds (closed-loop figures: medians of the rounds; ratios:"
        " median of the per-round ratios [min-max])"
    )


def _throughput(results: list[Run]) -> str:
    header = (
        f"{'batch':<22} {'proxy':<20} {'req/s':>7} {'events/s':>9} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'CPU ms/req':>10} {'CPU':>5} {'others':>6} {'KB/in-flight':>12} "
        f"{'x JSON':>6} {'growth KB':>9}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        wire = f"{result['batch']} {result['encoding']} ({result['body_bytes'] / 1000:,.0f} kB)"
        lines.append(
            f"{wire:<22} {LABELS[result['scenario']]:<20} "
            f"{result['requests_per_s']:7,.0f} {result['events_per_s']:9,.0f} "
            f"{result['latency_ms']['p50']:7.2f} {result['latency_ms']['p99']:7.2f}"
            f"{_cpu_columns(result)}{_memory_columns(result)}"
        )
    return "\n".join(lines)


def _cpu_columns(result: Run) -> str:
    if result["cpu_ms_per_request"] is None:
        return ""
    return (
        f" {result['cpu_ms_per_request']:10.3f} {result['cpu_utilization']:5.0%}"
        f" {_share(result['other_load']):>6}"
    )


def _share(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def _memory_columns(result: Run) -> str:
    memory = result["memory"]
    if not memory:
        return ""
    return (
        f" {memory['per_request_bytes'] / 1024:12,.0f} {memory['per_request_x_body']:5.1f}x"
        f" {memory['growth_bytes'] / 1024:9,.0f}"
    )


def _ratio_table(rows: list[Run]) -> str:
    names = [name for name, _, _ in RATIOS]
    if not any(name in row for row in rows for name in names):
        return ""
    cells = [[_ratio(row, name) for name in names] for row in rows]
    width = max(25, *(len(cell) + 2 for line in cells for cell in line))
    header = f"{'ratio: req/s (CPU)':<19}" + "".join(
        f"{name.replace('_vs_', ' / '):>{width}}" for name in names
    )
    lines = [header, "-" * len(header)]
    for row, line in zip(rows, cells, strict=True):
        values = "".join(f"{cell:>{width}}" for cell in line)
        lines.append(f"{row['batch'] + ' ' + row['encoding']:<19}{values}")
    return "\n".join(lines)


def _ratio(row: Run, name: str) -> str:
    """``89% (88%)``: the req/s ratio (by CPU in parentheses); with several rounds, each
    followed by the range of its rounds: ``89% [84-93%] (88% [86-90%])``."""
    if name not in row:
        return "-"
    by_cpu = row[f"{name}_by_cpu"]
    rate = f"{row[name]:.0%}{_spread(row.get(f'{name}_rounds'))}"
    if by_cpu is None:
        return f"{rate} (?)"
    return f"{rate} ({by_cpu:.0%}{_spread(row.get(f'{name}_by_cpu_rounds'))})"


def _two_workers_table(rows: list[Run]) -> str:
    rows = [row for row in rows if "two_workers" in row]
    if not rows:
        return ""
    header = (
        f"{'two workers / one':<19} {'req/s (shared cores)':>20} {'req per CPU-s':>13} "
        f"{'worker CPU shares':>17} {'connections':>11} {'supervisor CPU s':>16} "
        f"{'projected':>9} {'by connections':>14}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        two = row["two_workers"]
        shares = "/".join(f"{share:.0%}" for share in two["worker_shares"] or [])
        connections = "/".join(f"{count:g}" for count in two["worker_connections"])
        lines.append(
            f"{row['batch'] + ' ' + row['encoding']:<19} {two['vs_one']:20.2f}x "
            f"{_times(two['efficiency']):>12} {shares or '?':>17} {connections:>11} "
            f"{two['supervisor_cpu_seconds']:16.2f} {_times(two['projected']):>9}"
            f" {_times(two['projected_by_connections']):>14}"
        )
    return "\n".join([*lines, *textwrap.wrap(PROJECTION_NOTE, len(header))])


def _times(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}x"


def _latency_table(results: list[Run]) -> str:
    rows = [result for result in results if result.get("open_loop")]
    if not rows:
        return ""
    header = (
        f"{'open loop, half max rate':<24} {'proxy':<20} {'req/s':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'sink alone p99':>14} {'added p99':>9} {'CPU':>5} {'others':>6}"
    )
    lines = [header, "-" * len(header)]
    for result in rows:
        loop = result["open_loop"]
        lines.append(
            f"{result['batch'] + ' ' + result['encoding']:<24} "
            f"{LABELS[result['scenario']]:<20} {loop['rate']:7,.0f} {loop['p50_ms']:7.2f} "
            f"{loop['p99_ms']:7.2f} {loop['direct_p99_ms']:14.2f} {loop['added_p99_ms']:9.2f}"
            f" {loop['cpu_utilization']:5.0%} {_share(loop['other_load']):>6}"
        )
    return "\n".join(lines)


def _targets(checks: list[Run]) -> str:
    if not checks:
        return "issue 7 targets: none measured by this selection"
    lines = ["issue 7 targets:"]
    for check in checks:
        state = "met    " if check["met"] else "NOT MET"
        lines.append(f"  {state}  {check['target']}: {check['measured']}")
    return "\n".join(lines)


def _noise_warning(results: list[Run]) -> str:
    shares = [
        measured["other_load"]
        for result in results
        for measured in rounds_of(result)
        if measured.get("other_load") is not None
    ]
    worst = max(shares, default=0.0)
    if worst < 0.2:
        return ""
    return (
        f"warning: other processes took up to {worst:.0%} of the proxy CPU during timed runs;"
        " req/s and latency are disturbed, CPU ms/request and the (CPU) ratios much less"
    )
