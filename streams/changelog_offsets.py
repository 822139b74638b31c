"""Changelog offsets under exactly-once: where each changelog ends, and how far a local store has read it.

faust-streaming 0.15 gets both wrong when processing_guarantee="exactly_once":

- It takes the end of a changelog partition from the consumer's last fetch response (the last
  stable offset). For a partition this worker has not fetched from yet (one just moved to it in a
  rebalance, or one being restored after a restart) that is unknown, so Faust believes the
  changelog is empty: it skips restoring the partition, or stops with a ConsistencyError when a
  standby copy is already ahead of "empty". Asking the broker (a ListOffsets request with the
  consumer's read_committed isolation) returns the last stable offset every time.
- It keeps the offset of each changelog record sent until the source partition's offsets are
  committed, but looks it up under the source partition, never under the changelog partition it
  is filed under, so no offset is ever stored with the data and every restart reads every
  changelog from the beginning. A table partition and the source partition that writes it share
  their number, so a commit of source partition p stores the pending offsets of changelog
  partition p.
- At the end of a recovery it seeks standby changelog partitions to where their copies stand,
  turning "nothing read" (-1) into 0 but passing None (no offset stored for the partition yet)
  on to aiokafka, which refuses it with a ValueError that crashes the worker. That happened when
  a third worker joined right after a second. A partition with nothing read is sought from its start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP, ConsumerT


async def highwaters_from_broker(self: AIOKafkaConsumerThread, partitions: Iterable[TP]) -> Mapping[TP, int]:
    return await self._ensure_consumer().end_offsets(list(partitions))


def store_changelog_offsets_on_commit(self: TableManager, offsets: Mapping[TP, int]) -> None:
    committed = {tp.partition for tp in offsets}
    for changelog_tp in [tp for tp in self._pending_persisted_offsets if tp.partition in committed]:
        store, offset = self._pending_persisted_offsets.pop(changelog_tp)
        store.set_persisted_offset(changelog_tp, offset)


async def seek_offsets_from_start_when_unread(
    self: Recovery, consumer: ConsumerT, tps: set[TP], offsets: Counter[TP], title: str
) -> None:
    await consumer.seek_wait({tp: offsets[tp] if (offsets[tp] or 0) > 0 else 0 for tp in tps})


def fix_changelog_offsets() -> None:
    AIOKafkaConsumerThread._highwaters = highwaters_from_broker  # type: ignore[method-assign]
    TableManager.on_commit = store_changelog_offsets_on_commit  # type: ignore[method-assign]
    Recovery._seek_offsets = seek_offsets_from_start_when_unread  # type: ignore[method-assign]
