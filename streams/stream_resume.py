"""After a recovery, stream partitions are fetched again only once the agents' buffers are emptied.

faust-streaming 0.15 ends a recovery (at start and after every rebalance) by resuming the stream
partitions, seeking them to their committed offsets and only then resuming flow control, which
empties every agent's buffer. Records fetched in between were dropped from the buffers while the
consumer's position moved past them: an agent that had not taken them yet never saw them, and a
table agent that had taken some saw a gap. A worker restarted mid-stream lost hundreds of
signups (the users agent) and single post views (the engagement table) this way. Here the
stream partitions stay paused through that end of recovery and are resumed after it, from the
positions its seek set, with the buffers already empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from faust.tables.recovery import Recovery
from faust.types import TP

Resume = Callable[[Recovery, int], Awaitable[None]]


def resuming_streams_last(resume: Resume) -> Resume:
    @wraps(resume)
    async def resume_streams_last(self: Recovery, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        held: set[TP] = set()
        consumer.resume_partitions = held.update  # type: ignore[method-assign, assignment]
        try:
            await resume(self, generation_id)
        finally:
            del consumer.resume_partitions
        if held and self.app.consumer_generation_id == generation_id:
            consumer.resume_partitions(held)

    resume_streams_last.resumes_streams_last = True  # type: ignore[attr-defined]
    return resume_streams_last


def resume_streams_after_recovery() -> None:
    """Patch Faust's recovery once, however many apps are created."""
    if getattr(Recovery.on_recovery_completed, "resumes_streams_last", False):
        return
    Recovery._resume_streams = resuming_streams_last(Recovery._resume_streams)  # type: ignore[method-assign, assignment]
    Recovery.on_recovery_completed = resuming_streams_last(Recovery.on_recovery_completed)  # type: ignore[method-assign, assignment]
