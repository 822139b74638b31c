"""Several events of one partition in flight at once, those of one key still one after another.

Most of a family handler's time is spent waiting: on the database, on the SMTP server. Handling
the events of a partition strictly one at a time leaves the worker idle through every wait, and
puts a failing event's attempt in front of every healthy event behind it. Lanes start up to
``limit`` handlers at once; an event waits only for the events of its own key that came before
it (Kafka keys are the entity an event is about, so a user's follow and unfollow still apply in
order). Handlers finish out of order; the caller acknowledges their events in offset order
(``streams.acks``), so a commit never passes an event still in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable


class Lanes:
    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.last_of_key: dict[Hashable, asyncio.Task[None]] = {}
        self.running: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None

    async def start(self, key: Hashable | None, work: Callable[[], Awaitable[None]]) -> None:
        """Wait for a free slot, then run ``work`` as soon as the earlier work of ``key`` has finished.

        A key of None orders nothing. An exception that escaped earlier work is raised here, so a
        fault the handler did not route aside still stops the agent as it would have in line.
        """
        await self.slots.acquire()
        if self.failure is not None:
            self.slots.release()
            raise self.failure
        before = self.last_of_key.get(key) if key is not None else None
        task = asyncio.create_task(self.run(before, work))
        self.running.add(task)
        if key is not None:
            self.last_of_key[key] = task
        task.add_done_callback(lambda done: self.finished(key, done))

    async def run(self, before: asyncio.Task[None] | None, work: Callable[[], Awaitable[None]]) -> None:
        if before is not None:
            await asyncio.wait([before])
        await work()

    def finished(self, key: Hashable | None, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        if key is not None and self.last_of_key.get(key) is task:
            del self.last_of_key[key]
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()
        self.slots.release()

    async def drain(self) -> None:
        """Wait for every started handler; raise the first exception one let escape."""
        if self.running:
            await asyncio.wait(set(self.running))
        if self.failure is not None:
            raise self.failure

    async def stop(self, grace: float) -> None:
        """Give running handlers ``grace`` seconds to finish, so fewer events are handled again after a
        restart; cancel the rest (their events were not acknowledged and will be delivered again)."""
        if self.running:
            await asyncio.wait(set(self.running), timeout=grace)
        for task in set(self.running):
            task.cancel()
