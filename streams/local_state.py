"""The worker's local RocksDB tables are trusted only after a clean stop.

Faust writes a table change to RocksDB at once, but under exactly-once the change counts only
when its Kafka transaction commits. A worker that is killed leaves changes in its local store
whose transactions were aborted, and committed ones past the offset it recorded, so its store
would count some events twice. As Kafka Streams does, the store of a worker that did not stop
cleanly is thrown away and rebuilt from the changelogs, which hold committed changes only.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import faust

logger = logging.getLogger(__name__)

RUNNING = "worker.running"


def discard_if_unclean(tabledir: Path, marker: Path, run: str) -> bool:
    """Delete ``tabledir`` when ``marker`` says another run used it and never stopped cleanly; True if so.

    Faust sends its worker-init signal more than once, so a marker naming this run is ours. A run
    is named by its pid and a random part, since a worker in a container has the same pid every time.
    """
    if not marker.exists() or not tabledir.exists():
        return False
    owner = marker.read_text().strip()
    if owner == run:
        return False
    logger.warning(
        "the last worker using %s did not stop cleanly (run %s); its tables are rebuilt from their changelogs",
        tabledir, owner or "unknown",
    )
    shutil.rmtree(tabledir)
    return True


def guard_local_state(app: faust.App, data_dir: Path, exactly_once: bool) -> None:
    """Mark the store in use while the worker runs; a worker that starts and finds the mark discards it."""
    marker = data_dir / RUNNING
    run = f"{os.getpid()}-{uuid.uuid4().hex}"

    @app.on_worker_init.connect  # type: ignore[arg-type]
    def on_worker_init(app: faust.App, **kwargs: Any) -> None:
        if exactly_once:
            discard_if_unclean(Path(app.conf.tabledir), marker, run)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(run)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_before_shutdown(app: faust.App, **kwargs: Any) -> None:
        """Sent once the consumer has stopped and committed: the store matches the committed offsets."""
        marker.unlink(missing_ok=True)
