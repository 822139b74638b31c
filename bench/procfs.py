"""What the kernel counts for a worker process: its children, its memory and its CPU time, from /proc."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(below for child in children for below in process_tree(int(child)))]


def memory_kib(pid: int, field: str) -> int:
    """A /proc/PID/status memory field (VmHWM, VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"no {field} for process {pid}")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User plus system CPU time of process ``pid``, or of one of its threads (the main thread's id is ``pid``).

    A worker runs its event loop on one thread; the process total also counts the database driver's
    and the signup lane's threads, which share the interpreter lock with it.
    """
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_ticks(cpus: frozenset[int]) -> tuple[int, int]:
    """Busy and total clock ticks of ``cpus`` since boot (/proc/stat; idle and iowait are not busy)."""
    busy = total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *counts = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(count) for count in counts[:8]]
            busy += sum(ticks) - ticks[3] - ticks[4]
            total += sum(ticks)
    return busy, total
