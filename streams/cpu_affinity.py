"""Pinning a worker to chosen CPUs, so that its threads hand the GIL to each other on one core.

A worker is one Python process with several threads: the event loop, Faust's consumer thread,
one thread per SQLite connection, the folding lane. They take turns holding the GIL, and a
hand-over to a thread that sleeps on another core costs a cross-core wake-up; on a virtual
machine that is an interrupt through the hypervisor. Kept on one core, a hand-over is a plain
context switch. ``bench.cpu_affinity`` measures what that is worth (see the README's *The worker*).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from streams.errors import ConfigurationError


def parse_cpu_list(text: str) -> frozenset[int]:
    """CPUs written as taskset and /proc write them: ``3``, ``0-2,5``."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or dash and not (last.isdigit() and int(last) >= int(first)):
            raise ValueError(f"{text!r} is not a CPU list such as 3 or 0-2,5")
        cpus.update(range(int(first), int(last if dash else first) + 1))
    return frozenset(cpus)


def cpu_list(cpus: frozenset[int] | set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def pin_process(cpus: frozenset[int]) -> None:
    """Run every thread of this process, and every thread it starts from now on, on ``cpus`` only."""
    allowed = os.sched_getaffinity(0)
    if not cpus <= allowed:
        raise ConfigurationError(
            f"worker.cpus={cpu_list(cpus)}: this worker may run on CPUs {cpu_list(allowed)} only"
        )
    pin_threads(os.getpid(), cpus)


def pin_threads(pid: int, cpus: frozenset[int]) -> None:
    """Run every thread of process ``pid``, and every thread they start from now on, on ``cpus`` only."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)
