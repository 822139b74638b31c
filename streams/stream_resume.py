"""After a recovery, stream partitions start again from their committed offsets, and nothing
fetched on the way is lost.

faust-streaming 0.15 ends a recovery (at start and after every rebalance) by resuming the stream
partitions, seeking them to their committed offsets and only then resuming flow control, which
empties every agent's buffer. Records fetched in between are dropped from the buffers while the
consumer's position has moved past them, and a partition with no committed offset is not sought
at all. An agent that had not taken them yet never sees them (a worker restarted mid-stream lost
hundreds of signups this way, while the table agents beside it, quicker to take theirs, counted
them), and the partition's commits stop at the first one. So once the buffers are emptied, every
stream partition is sought again: to its committed offset, or to the start of the partition when
none is committed. What an agent had already taken arrives twice; the handlers and the tables
recognise a repeated offset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from faust.tables.recovery import Recovery

Resume = Callable[[Recovery, int], Awaitable[None]]


async def seek_streams_again(recovery: Recovery) -> None:
    consumer = recovery.app.consumer
    streams = [tp for tp in consumer.assignment() if not recovery._is_changelog_tp(tp)]
    if not streams:
        return
    await consumer.perform_seek()
    never_committed = [tp for tp in streams if not consumer._committed_offset.get(tp)]
    if never_committed and recovery.app.conf.consumer_auto_offset_reset == "earliest":
        await consumer.seek_wait(await consumer.earliest_offsets(*never_committed))


def seeking_again(resume: Resume) -> Resume:
    @wraps(resume)
    async def resume_then_seek(self: Recovery, generation_id: int = 0) -> None:
        await resume(self, generation_id)
        if self.completed.is_set() and self.app.consumer_generation_id == generation_id:
            await seek_streams_again(self)

    resume_then_seek.seeks_again = True  # type: ignore[attr-defined]
    return resume_then_seek


def refetch_after_recovery() -> None:
    """Patch Faust's recovery once, however many apps are created."""
    if getattr(Recovery.on_recovery_completed, "seeks_again", False):
        return
    Recovery._resume_streams = seeking_again(Recovery._resume_streams)
    Recovery.on_recovery_completed = seeking_again(Recovery.on_recovery_completed)
