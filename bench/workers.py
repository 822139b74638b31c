"""A streams worker for one benchmark run, sharing nothing with other runs or with the repository."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.devkafka import LocalBroker
from streams.worker_process import WorkerProcess
from tests.conftest import JARS_CACHE, free_port


def bench_worker(env: dict[str, str], home: Path, name: str, database_url: str | None = None) -> WorkerProcess:
    """A worker with its own store under ``home`` (not .streams/), a free web port, and ``database_url`` or a
    SQLite database of its own under ``home``."""
    return WorkerProcess(
        {**env, "STREAMS_STATE__DATA_DIR": str(home / name),
         "STREAMS_DATABASE__URL": database_url or f"sqlite:///{home / name}.db"},
        home / f"{name}.log", free_port(),
    )


@contextmanager
def scratch_broker() -> Iterator[tuple[Path, str]]:
    """A scratch folder and a local broker of its own for one benchmark; both are gone at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        broker = LocalBroker(home / "kafka", port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
        bootstrap = broker.start()
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
