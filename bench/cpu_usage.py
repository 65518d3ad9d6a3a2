"""CPU time of the processes of a load test, by component, read from /proc.

A component is a set of process ids found afresh at each reading (so processes that started in
between, such as PostgreSQL backends, count): the processes of one group, or one process and its
children. The load generator is this process alone (the cluster's processes are its children).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int, float] | None:
    """(parent pid, process group, CPU seconds) of `pid`, or None once it is gone."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        return int(fields[1]), int(fields[2]), (int(fields[11]) + int(fields[12])) / TICKS
    return None


def snapshot() -> dict[int, tuple[int, int, float]]:
    """Every process on the machine: pid -> (parent pid, process group, CPU seconds)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = found
    return table


Selector = Callable[[dict[int, tuple[int, int, float]]], Iterable[int]]


def group(pgid: int) -> Selector:
    """The processes of process group `pgid`."""
    return lambda table: [pid for pid, (_, g, _) in table.items() if g == pgid]


def single(pid: int) -> Selector:
    """Process `pid` alone (not the processes it started)."""
    return lambda table: [pid] if pid in table else []


def tree(root: int) -> Selector:
    """Process `root` and its children."""
    return lambda table: [pid for pid, (parent, _, _) in table.items() if pid == root or parent == root]


def named(name: str) -> Selector:
    """The processes whose command name is `name` (a server's processes: `postgres`, `redis-server`)."""
    def select(table: dict[int, tuple[int, int, float]]) -> list[int]:
        found = []
        for pid in table:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                    found.append(pid)
        return found

    return select


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle since boot (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


class CpuMeter:
    """CPU seconds each component used between `start()` and `stop()`; the rest of the machine
    is reported as `other`."""

    def __init__(self, components: dict[str, Selector]) -> None:
        self.components = components
        self._before: dict[str, dict[int, float]] = {}
        self._busy = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        table = snapshot()
        return {name: {pid: table[pid][2] for pid in select(table)}
                for name, select in self.components.items()}

    def start(self) -> None:
        self._before, self._busy = self._read(), machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """CPU seconds per component since `start()` (processes that started since count in full)."""
        after, busy = self._read(), machine_busy_seconds() - self._busy
        used = {name: round(sum(cpu - self._before[name].get(pid, 0.0) for pid, cpu in pids.items()), 2)
                for name, pids in after.items()}
        used["other"] = round(max(0.0, busy - sum(used.values())), 2)
        used["machine"] = round(busy, 2)
        return used
