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
from pathlib import Path
from typing import Any

import faust

logger = logging.getLogger(__name__)

RUNNING = "worker.running"


def discard_if_unclean(tabledir: Path, marker: Path) -> bool:
    """Delete ``tabledir`` when ``marker`` says another worker used it and never stopped cleanly; True if so.

    Faust sends its worker-init signal more than once, so a marker naming this process is ours.
    """
    if not marker.exists() or not tabledir.exists():
        return False
    owner = marker.read_text().strip()
    if owner == str(os.getpid()):
        return False
    logger.warning(
        "the last worker using %s did not stop cleanly (pid %s); its tables are rebuilt from their changelogs",
        tabledir, owner or "unknown",
    )
    shutil.rmtree(tabledir)
    return True


def guard_local_state(app: faust.App, data_dir: Path, exactly_once: bool) -> None:
    """Mark the store in use while the worker runs; a worker that starts and finds the mark discards it."""
    marker = data_dir / RUNNING

    @app.on_worker_init.connect
    def on_worker_init(app: faust.App, **kwargs: Any) -> None:
        if exactly_once:
            discard_if_unclean(Path(app.conf.tabledir), marker)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))

    @app.on_before_shutdown.connect
    async def on_before_shutdown(app: faust.App, **kwargs: Any) -> None:
        """Sent once the consumer has stopped and committed: the store matches the committed offsets."""
        marker.unlink(missing_ok=True)
