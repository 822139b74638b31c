"""A streams worker for one benchmark run, sharing nothing with other runs or with the repository."""

from __future__ import annotations

from pathlib import Path

from streams.worker_process import WorkerProcess
from tests.conftest import free_port


def bench_worker(env: dict[str, str], home: Path, name: str) -> WorkerProcess:
    """A worker with its own store and SQLite database under ``home`` (not .streams/), and a free web port."""
    return WorkerProcess(
        {**env, "STREAMS_STATE__DATA_DIR": str(home / name), "STREAMS_DATABASE__URL": f"sqlite:///{home / name}.db"},
        home / f"{name}.log", free_port(),
    )
