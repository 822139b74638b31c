"""A streams worker for one benchmark run, sharing nothing with other runs or with the repository."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.procfs import process_tree
from streams.cpu_affinity import pin_threads
from streams.devkafka import LocalBroker
from streams.worker_process import WorkerProcess
from tests.conftest import JARS_CACHE, free_port
from tests.databases import PostgresServer


def bench_worker(env: dict[str, str], home: Path, name: str, database_url: str | None = None) -> WorkerProcess:
    """A worker with its own store under ``home`` (not .streams/), a free web port, and ``database_url`` or a
    SQLite database of its own under ``home``."""
    return WorkerProcess(
        {**env, "STREAMS_STATE__DATA_DIR": str(home / name),
         "STREAMS_DATABASE__URL": database_url or sqlite_url(home, name)},
        home / f"{name}.log", free_port(),
    )


def progress_rate(done: Callable[[], int], events: int, worker: WorkerProcess, stall: float = 300.0) -> float:
    """Events per second from the first progress ``done()`` reports (read every 50 ms) until it reaches ``events``;
    the run stops with a message when nothing moves for ``stall`` seconds."""
    first_done, first_at = 0, None
    last_done, moved_at = 0, time.monotonic()
    while True:
        now_done = done()
        now = time.perf_counter()
        if first_at is None and now_done > 0:
            first_done, first_at = now_done, now
        if now_done >= events and first_at is not None:
            return (now_done - first_done) / (now - first_at)
        if now_done != last_done:
            last_done, moved_at = now_done, time.monotonic()
        elif time.monotonic() - moved_at > stall:
            raise SystemExit(f"the worker made no progress for {stall:.0f}s, at {now_done} of {events}; "
                             f"see {worker.log_file}")
        time.sleep(0.05)


def sqlite_url(home: Path, name: str) -> str:
    return f"sqlite:///{home / name}.db"


@dataclass(frozen=True)
class BenchDatabases:
    """Where a benchmark's workers keep their rows: a SQLite file per run, or a database per run on one private
    PostgreSQL server (fsync off), the database deployments use."""

    server: PostgresServer | None

    @property
    def label(self) -> str:
        return "PostgreSQL" if self.server else "SQLite"

    def new(self, home: Path, name: str) -> str:
        """A fresh, empty database for the run ``name``, and its URL."""
        return self.server.new_database() if self.server else sqlite_url(home, name)


@contextmanager
def bench_databases(postgresql: bool, cpus: frozenset[int] | None = None) -> Iterator[BenchDatabases]:
    """The benches' ``--postgresql``: the server runs for the whole benchmark, on ``cpus`` when given, and is
    removed after it."""
    if not postgresql:
        yield BenchDatabases(None)
        return
    with PostgresServer(free_port()) as server:
        if cpus:
            pin_process_tree(server.pid(), cpus)
        yield BenchDatabases(server)


@contextmanager
def scratch_broker(cpus: frozenset[int] | None = None) -> Iterator[tuple[Path, str]]:
    """A scratch folder and a local broker of its own for one benchmark, on ``cpus`` when given; both are gone at
    the end."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        broker = LocalBroker(home / "kafka", port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
        bootstrap = broker.start()
        if cpus and (pid := broker.process.pid()) is not None:
            pin_process_tree(pid, cpus)
        try:
            yield home, bootstrap
        finally:
            broker.stop()


def cpu_of_this_machine(text: str) -> int:
    """``--worker-cpu``: one CPU this process may run on."""
    allowed = os.sched_getaffinity(0)
    if not text.isdigit() or int(text) not in allowed:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of this machine's CPUs: {sorted(allowed)}")
    return int(text)


def other_cpus(worker_cpu: int | None) -> frozenset[int] | None:
    """With the worker pinned to ``worker_cpu``, the CPUs left for the rest of a benchmark (broker, database, SMTP
    server, feeders), so that none of them takes the worker's CPU or its caches; None when there is nothing to
    keep apart."""
    if worker_cpu is None:
        return None
    return frozenset(os.sched_getaffinity(0)) - {worker_cpu} or None


def pin_process_tree(pid: int, cpus: frozenset[int]) -> None:
    """Process ``pid`` and every process below it on ``cpus``, every thread; what they start later inherits it."""
    for process in process_tree(pid):
        pin_threads(process, cpus)


@contextmanager
def this_process_on(cpus: frozenset[int] | None) -> Iterator[None]:
    """This process's threads (a benchmark's SMTP server and feeders) on ``cpus`` meanwhile, when given."""
    if not cpus:
        yield
        return
    before = frozenset(os.sched_getaffinity(0))
    pin_threads(os.getpid(), cpus)
    try:
        yield
    finally:
        pin_threads(os.getpid(), before)
