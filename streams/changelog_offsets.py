"""Changelog transactions and offsets under exactly-once, which faust-streaming 0.15 gets wrong.

With processing_guarantee="exactly_once", Faust:

- keeps one transaction per (topic group, partition) and commits a transaction only with source
  offsets of its own group. A table's changelog can be in another group than the topic feeding
  the table, so source offsets could be committed while the changelog records of the events
  behind them were still in an open transaction, lost when the worker was killed. Every commit
  now first commits every other open transaction, then those with offsets: a change may become
  visible before the offsets of its events (the tables skip events they already folded), never
  after them.

- takes the end of a changelog partition from the consumer's last fetch response (the last
  stable offset). For a partition this worker has not fetched from yet (one just moved to it in a
  rebalance, or one being restored after a restart) that is unknown, so Faust believes the
  changelog is empty: it skips restoring the partition, or stops with a ConsistencyError when a
  standby copy is already ahead of "empty". Asking the broker (a ListOffsets request with the
  consumer's read_committed isolation) returns the last stable offset every time.
- keeps the offset of each changelog record sent until the source partition's offsets are
  committed, but looks it up under the source partition, never under the changelog partition it
  is filed under, so no offset is ever stored with the data and every restart reads every
  changelog from the beginning. A table partition and the source partition that writes it share
  their number, so a commit of source partition p stores the pending offsets of changelog
  partition p.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from faust.tables.manager import TableManager
from faust.transport.consumer import TransactionManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP


async def commit_every_transaction(
    self: TransactionManager, offsets: Mapping[TP, int], start_new_transaction: bool = True
) -> bool:
    """Commit each open transaction: first those without source offsets (changelogs), then those with."""
    by_transaction: dict[str, dict[TP, int]] = defaultdict(dict)
    for tp, offset in offsets.items():
        by_transaction[f"{self.app.conf.id}-{self.app.assignor.group_for_topic(tp.topic)}-{tp.partition}"][tp] = offset
    producer = self.producer
    for transactional_id in [tid for tid in producer._transaction_producers if tid not in by_transaction]:
        await producer.commit_transaction(transactional_id)
        if start_new_transaction:
            await producer.begin_transaction(transactional_id)
    await producer.commit_transactions(by_transaction, self.app.conf.id, start_new_transaction=start_new_transaction)
    return True


async def highwaters_from_broker(self: AIOKafkaConsumerThread, partitions: Iterable[TP]) -> Mapping[TP, int]:
    return await self._ensure_consumer().end_offsets(list(partitions))


def store_changelog_offsets_on_commit(self: TableManager, offsets: Mapping[TP, int]) -> None:
    committed = {tp.partition for tp in offsets}
    for changelog_tp in [tp for tp in self._pending_persisted_offsets if tp.partition in committed]:
        store, offset = self._pending_persisted_offsets.pop(changelog_tp)
        store.set_persisted_offset(changelog_tp, offset)


def fix_changelog_offsets() -> None:
    TransactionManager.commit = commit_every_transaction
    AIOKafkaConsumerThread._highwaters = highwaters_from_broker
    TableManager.on_commit = store_changelog_offsets_on_commit
