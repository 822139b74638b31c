"""Bringing a partition's store up to its changelog: read what was committed past the store's position, in batches.

The changelog is read read_committed, so records of a transaction that was aborted, or is still
open, are never restored. Reading stops at the end the broker reports (``_PARTITION_EOF``), which
lies past the last transaction marker. Each batch of records goes into RocksDB in one write batch,
with the position it reaches.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.kafka_clients import confluent_config
from streams.settings import KafkaSettings
from streams.state.store import PartitionStore

#: Changelog records read and written to the store at once.
RESTORE_BATCH = 10_000
POLL_SECONDS = 0.2
TIMEOUT = 30.0


@dataclass
class Restoring:
    """How far a partition's restore has got, for /health."""

    changelog: str
    partition: int
    records_left: int
    restored: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def rate(self) -> float:
        """Records restored per second so far."""
        elapsed = (self.finished or time.monotonic()) - self.started
        return self.restored / elapsed if elapsed > 0 else 0.0


def restore(
    kafka: KafkaSettings, group_id: str, changelog: str, partition: int, store: PartitionStore,
    stopping: threading.Event, progress: Restoring | None = None,
) -> int:
    """Read ``changelog``'s partition past ``store``'s position into it; return the records restored.

    A store whose position is past the changelog's end, or before its start, belongs to a changelog
    that was made again: it is emptied and restored from the start.
    """
    reader = Consumer(confluent_config(kafka, log_level=0, **{
        "group.id": f"{group_id}-restore", "enable.auto.commit": False, "isolation.level": "read_committed",
        "enable.partition.eof": True, "fetch.max.bytes": 64 * 1024 * 1024,
    }))
    try:
        low, high = reader.get_watermark_offsets(TopicPartition(changelog, partition), timeout=TIMEOUT)
        position = store.position()
        if position >= high or position < low - 1:
            store.wipe()
            position = -1
        if progress is not None:
            progress.records_left = max(0, high - position - 1)
        if position + 1 >= high:
            return 0
        reader.assign([TopicPartition(changelog, partition, max(low, position + 1))])
        restored = 0
        while not stopping.is_set():
            values: dict[str, bytes | None] = {}
            at_end, records = False, 0
            for message in reader.consume(RESTORE_BATCH, POLL_SECONDS):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end = True
                        continue
                    raise KafkaException(error)
                values[cast(bytes, message.key()).decode()] = message.value()
                position = cast(int, message.offset())
                records += 1
            if values:
                store.write(values, position)
                restored += records
                if progress is not None:
                    progress.restored = restored
                    progress.records_left = max(0, high - position - 1)
            if at_end:
                return restored
        return restored
    finally:
        reader.close()
        if progress is not None:
            progress.finished = time.monotonic()
