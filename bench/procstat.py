"""CPU time and memory of a gunicorn process tree, read from /proc (Linux only).

CPU is counted over the whole tree, master and every worker, children included: a benchmark
round divides the tree's CPU delta by the requests it completed, so it does not matter which
worker took how many connections. A worker that died during the round took its CPU time into
the master's cutime/cstime when it was reaped, so it is still counted (but the delta can only
be trusted when no worker died mid-round: the live worker's counters vanish with it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's workers when `pid` is the master)."""
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, with_reaped: bool = True) -> float:
    """utime + stime (+ cutime + cstime of reaped children) of one process, in seconds."""
    fields = _stat_fields(pid)
    # After the command: field 3 is state, so utime (14) is index 11 here, stime 12,
    # cutime 13, cstime 14.
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


def tree_cpu_seconds(master: int) -> float:
    """CPU seconds used so far by the master, its live workers and its reaped children."""
    total = cpu_seconds(master)
    for child in children(master):
        try:
            total += cpu_seconds(child)
        except (OSError, ValueError, IndexError):
            continue  # exited between listing and reading: now in the master's cutime
    return total


def worker_cpu_seconds(master: int) -> dict[int, float]:
    """CPU seconds of each live worker (its own threads only)."""
    found = {}
    for child in children(master):
        try:
            found[child] = cpu_seconds(child, with_reaped=False)
        except (OSError, ValueError, IndexError):
            continue
    return found


def shares(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Each worker's fraction of the workers' CPU between two worker_cpu_seconds(), largest
    first: how evenly the connections spread (gunicorn workers race to accept them)."""
    deltas = [after[pid] - before[pid] for pid in after if pid in before]
    total = sum(deltas)
    return sorted((d / total for d in deltas), reverse=True) if total > 0 else []


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


@dataclass(frozen=True)
class TreeSample:
    cpu: float
    workers: tuple[int, ...]


def sample(master: int) -> TreeSample:
    return TreeSample(cpu=tree_cpu_seconds(master), workers=tuple(children(master)))
