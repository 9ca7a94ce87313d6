"""CPU time and memory of a process under test and its descendants, read from /proc.

Callers take the :func:`process_tree` once and read the figures of those processes, so
figures stay right when the proxy runs worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time consumed so far by these processes (clock-tick resolution)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def rss_bytes(pids: list[int]) -> int:
    """Resident set size of these processes together."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
    return total


def maps_library(pids: list[int], name: str) -> bool:
    """Whether one of these processes has a file whose path contains ``name`` mapped (e.g.
    ``uvloop``: the proxy actually runs on uvloop, not merely has it installed)."""
    for pid in pids:
        try:
            if name in Path(f"/proc/{pid}/maps").read_text():
                return True
        except OSError:
            continue
    return False


def cpu_busy_seconds(cpu: int) -> float:
    """Time CPU ``cpu`` has spent on anything but idling (steal included: time the
    hypervisor gave to other guests), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name == f"cpu{cpu}":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            return (user + nice + system + irq + softirq + steal) / _TICKS
    raise ValueError(f"no cpu{cpu} line in /proc/stat")
