"""CPU time and memory of a process under test and its descendants, read from /proc.

Callers take the :func:`process_tree` once and read the figures of those processes, so
figures stay right when the proxy runs worker processes.
"""

from __future__ import annotations

import contextlib
import os
import resource
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
    return sum(cpu_seconds_each(pids))


def cpu_seconds_each(pids: list[int]) -> list[float]:
    """:func:`cpu_seconds` of each process, in the order given; 0 for one that has exited."""
    each = []
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            each.append(0.0)
            continue
        each.append((int(fields[11]) + int(fields[12])) / _TICKS)  # utime, stime
    return each


def connections_on_port(pids: list[int], port: int) -> list[int]:
    """For each process, in the order given, how many established TCP connections to its
    local ``port`` (IPv4) it holds: how the kernel spread the clients over the workers."""
    established = _established_sockets(port)
    counts = []
    for pid in pids:
        inodes = set()
        with contextlib.suppress(OSError):  # exited meanwhile
            for descriptor in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(descriptor)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        counts.append(len(inodes & established))
    return counts


def _established_sockets(port: int) -> set[str]:
    """Inodes of the established IPv4 TCP sockets whose local port is ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":  # TCP_ESTABLISHED
            inodes.add(fields[9])
    return inodes


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


def cpu_busy_seconds(cpus: set[int]) -> float:
    """Time these CPUs together have spent on anything but idling (steal included: time
    the hypervisor gave to other guests), from /proc/stat."""
    busy, found = 0, set()
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            busy += user + nice + system + irq + softirq + steal
            found.add(int(name[3:]))
    if found != cpus:
        raise ValueError(f"no line for CPUs {sorted(cpus - found)} in /proc/stat")
    return busy / _TICKS


def own_cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (the load generator
    runs, once they ended)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )
