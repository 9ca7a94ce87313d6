"""Tables, headline ratios and issue-7 targets of an end-to-end benchmark run.

Works on the plain dictionaries ``bench_proxy.py`` also writes with ``--json``.
"""

from __future__ import annotations

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


def ratios(results: list[Run]) -> list[Run]:
    """Per batch and encoding, the req/s of one scenario over another's (same run), and
    the same ratio computed from CPU time per request (``<name>_by_cpu``): requests per
    CPU-second, which other load on a shared machine disturbs less than req/s."""
    cells: dict[tuple[str, str], dict[str, Run]] = {}
    for result in results:
        cells.setdefault((result["batch"], result["encoding"]), {})[result["scenario"]] = result
    rows = []
    for (batch, encoding), runs in cells.items():
        row: Run = {"batch": batch, "encoding": encoding}
        for name, numerator, denominator in RATIOS:
            if numerator in runs and denominator in runs:
                top, bottom = runs[numerator], runs[denominator]
                row[name] = top["requests_per_s"] / bottom["requests_per_s"]
                cpu = top["cpu_ms_per_request"]
                row[f"{name}_by_cpu"] = bottom["cpu_ms_per_request"] / cpu if cpu else None
        if "scrub" in runs and runs.get("scrub-2w", {}).get("processes"):
            row["two_workers"] = two_workers(runs["scrub-2w"], runs["scrub"])
        rows.append(row)
    return rows


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
    """The issue-7 targets this run measured, each with its measured value."""
    checks = []
    for row in ratio_rows:
        where = f"{row['batch']} {row['encoding']}"
        if "scrub_vs_roundtrip" in row and row["batch"].startswith("127"):
            value = row["scrub_vs_roundtrip"]
            checks.append(
                _check(f"scrub >= 35% of orjson round trip, {where}", f"{value:.0%}", value >= 0.35)
            )
        if "forward_vs_passthrough" in row:
            value = row["forward_vs_passthrough"]
            checks.append(
                _check(f"forward >= 90% of passthrough, {where}", f"{value:.0%}", value >= 0.90)
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
            " disturbed); memory probe at "
            f"{options['memory_connections']} connections; scrubgate workers setting: "
            f"{machine['workers_setting']}; payloads: {', '.join(options['payloads'])}",
        ]
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
    header = f"{'ratio: req/s (CPU)':<19}" + "".join(
        f"{name.replace('_vs_', ' / '):>25}" for name in names
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        values = "".join(f"{_ratio(row, name):>25}" for name in names)
        lines.append(f"{row['batch'] + ' ' + row['encoding']:<19}{values}")
    return "\n".join(lines)


def _ratio(row: Run, name: str) -> str:
    if name not in row:
        return "-"
    by_cpu = row[f"{name}_by_cpu"]
    return f"{row[name]:.0%} ({'?' if by_cpu is None else f'{by_cpu:.0%}'})"


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
        connections = "/".join(str(count) for count in two["worker_connections"])
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
    shares = [result["other_load"] for result in results if result.get("other_load") is not None]
    worst = max(shares, default=0.0)
    if worst < 0.2:
        return ""
    return (
        f"warning: other processes took up to {worst:.0%} of the proxy CPU during timed runs;"
        " req/s and latency are disturbed, CPU ms/request and the (CPU) ratios much less"
    )
