"""Changelog records join the transaction that commits their source offsets.

faust-streaming 0.15 sends a table's changelog records through the producer's buffer, a queue
that a background task hands one by one to the transaction producer of the record's partition.
At least once, a commit flushes that queue first; under exactly-once it commits the source
offsets at once. A record still queued then lands in the next transaction, and a worker that
crashes or stops before that one commits loses it while its event counts as processed: a table
rebuilt from its changelog comes back short. Every commit now first waits until each record
queued before it has been handed over, so the transaction that commits an offset also commits
every change made by the events before it. Later records are not waited for, so a busy agent
cannot hold a commit back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import cast
from weakref import WeakKeyDictionary

from faust.transport.consumer import TransactionManager
from faust.transport.producer import ProducerBuffer
from faust.types import TP
from faust.types.tuples import FutureMessage

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 60.0


class Progress:
    """How many records a buffer has taken in and how many it has handed to a producer."""

    def __init__(self) -> None:
        self.queued = 0
        self.handed = 0


progress: WeakKeyDictionary[ProducerBuffer, Progress] = WeakKeyDictionary()
original_put = ProducerBuffer.put
original_send_pending = ProducerBuffer._send_pending
original_commit = TransactionManager.commit


def progress_of(buffer: ProducerBuffer) -> Progress:
    return progress.setdefault(buffer, Progress())


def counting_put(self: ProducerBuffer, fut: FutureMessage) -> None:
    progress_of(self).queued += 1
    original_put(self, fut)


async def counting_send_pending(self: ProducerBuffer, fut: FutureMessage) -> None:
    try:
        await original_send_pending(self, fut)
    finally:
        progress_of(self).handed += 1


async def handed_over(buffer: ProducerBuffer, target: int) -> None:
    """Return once the buffer has handed over its first ``target`` records."""
    state = progress_of(buffer)
    while state.handed < target:
        buffer.message_sent.clear()
        if state.handed >= target:
            return
        await buffer.message_sent.wait()


async def commit_after_handover(
    self: TransactionManager, offsets: Mapping[TP, int], start_new_transaction: bool = True,
) -> bool:
    buffer = cast(ProducerBuffer, self.app.producer.buffer)
    try:
        await asyncio.wait_for(handed_over(buffer, progress_of(buffer).queued), HANDOVER_TIMEOUT_S)
    except asyncio.TimeoutError:
        log.error("changelog records not handed to their transactions within %.0f s; offsets not committed",
                  HANDOVER_TIMEOUT_S)
        return False
    return await original_commit(self, offsets, start_new_transaction)


def commit_changelogs_with_offsets() -> None:
    ProducerBuffer.put = counting_put  # type: ignore[method-assign]
    ProducerBuffer._send_pending = counting_send_pending  # type: ignore[method-assign]
    TransactionManager.commit = commit_after_handover  # type: ignore[method-assign]
