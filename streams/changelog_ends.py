"""Where a changelog ends, asked of the broker, so table recovery under exactly-once reads all of it.

Under exactly-once, faust-streaming 0.15 takes the end of each changelog partition from the
consumer's last fetch response (its last stable offset). For a partition this worker has not
fetched from yet (one just moved to it in a rebalance, or one being restored after a restart),
that is unknown, so Faust believes the changelog is empty: it skips restoring the partition, or
stops with a ConsistencyError when a standby copy is already ahead of "empty". Asking the broker
(a ListOffsets request with the consumer's read_committed isolation) returns the last stable
offset every time, so recovery reads every committed change and no aborted one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP


async def highwaters_from_broker(self: AIOKafkaConsumerThread, partitions: Iterable[TP]) -> Mapping[TP, int]:
    return await self._ensure_consumer().end_offsets(list(partitions))


def ask_the_broker_where_changelogs_end() -> None:
    AIOKafkaConsumerThread._highwaters = highwaters_from_broker
