"""Topic priorities: while several families have events to handle, each gets the worker's time by its weight.

Weights come from the priority of each family's topic (critical 10, high 5, default 1, low 1).
Every agent asks for a turn before it handles an event (or a batch), and the gate keeps a
virtual time per family: a turn advances it by the worker's time the turn took, divided by the
weight. The worker's time is shared among the turns held at once, so eight emails waiting on
their SMTP server together are charged what one would be alone. A family goes ahead while its
virtual time is not past that of any other family that is busy at the same moment, so with a
backlog on both, a high-priority family gets five times the worker's time of a low-priority one,
and at equal weights a family of cheap events is not held to the pace of a family of costly
ones. A family alone never waits, and one that was idle resumes at the others' time, so idling
earns it no credit to spend later (stride scheduling).

Retried attempts of a family take their turns as a family of their own, weighted at
``retried_share`` of it: while fresh events of the family wait, a burst of failing events that
come back for another attempt gets that share of the family's time and the fresh events the
rest, and with nothing else waiting the retried attempts run at once. They wait for the others,
but no family waits for them: a family behind the others in virtual time is charged for a turn only
when it ends, so a retried attempt holding its turn while it waits on its database would keep every
fresh event from starting meanwhile, and leave the worker idle.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

#: A family that had a turn this recently counts as busy: between two events of a backlog its agent
#: holds no turn for a moment, and the others must not take that moment as the end of its backlog.
#: Much longer, and a family whose events arrive steadily, each handled at once, would count as busy
#: between them and hold the others back while it used little of the worker.
GRACE_S = 0.005
#: How long a waiting turn sleeps before it looks again when a family ahead of it holds a turn (the end
#: of that turn wakes it sooner).
RECHECK_S = 1.0
#: The furthest a busy family's virtual time may trail another's: a turn that held the worker long (a
#: database outage waited out inside it) sets its family back by at most this much.
MAX_LAG_S = 1.0


def retried(family: str) -> str:
    """The name under which the retried attempts of ``family`` take their turns."""
    return f"{family} (retried)"


class PriorityGate:
    def __init__(
        self, weights: Mapping[str, int], retried_share: float = 1.0, now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.weights: dict[str, float] = {
            **weights, **{retried(family): weight * retried_share for family, weight in weights.items()},
        }
        self.retried = {retried(family) for family in weights}
        self.virtual_time = dict.fromkeys(self.weights, 0.0)
        self.holding = dict.fromkeys(self.weights, 0)
        self.last_turn = dict.fromkeys(self.weights, float("-inf"))
        self.clock = 0.0
        self.waiters: set[asyncio.Future[None]] = set()
        self.now = now
        self.running = 0
        self.shared = 0.0
        self.shared_at = now()

    def share_so_far(self) -> float:
        """The worker's time each running turn has had since the gate began: elapsed time over the turns run at once."""
        now = self.now()
        if self.running:
            self.shared += (now - self.shared_at) / self.running
        self.shared_at = now
        return self.shared

    def busy(self, family: str, now: float) -> bool:
        return self.holding[family] > 0 or now - self.last_turn[family] < GRACE_S

    def going_first(self, family: str) -> list[str]:
        """The busy families behind ``family`` in virtual time, which go first, retried attempts aside; each is
        moved up to trail it by at most ``MAX_LAG_S``."""
        now, own = self.now(), self.virtual_time[family]
        behind = [
            other for other in self.weights
            if other != family and other not in self.retried and self.virtual_time[other] < own
            and self.busy(other, now)
        ]
        for other in behind:
            self.virtual_time[other] = max(self.virtual_time[other], own - MAX_LAG_S)
        return behind

    def resume(self, family: str) -> None:
        """A family back from idling starts at the time of the busy ones (or of the last turn): no saved credit."""
        now = self.now()
        busy = [self.virtual_time[other] for other in self.weights if other != family and self.busy(other, now)]
        self.virtual_time[family] = max(self.virtual_time[family], min(busy, default=self.clock))

    @asynccontextmanager
    async def turn(self, family: str, retry: bool = False) -> AsyncIterator[None]:
        """Wait for ``family``'s turn (its retried attempts' turn with ``retry``), then hold it while its
        events are handled; the family is charged its share of the worker's time meanwhile."""
        if retry:
            family = retried(family)
        if not self.busy(family, self.now()):
            self.resume(family)
        self.holding[family] += 1
        started: float | None = None
        try:
            while first := self.going_first(family):
                holding = any(self.holding[other] for other in first)
                await self.next_change(RECHECK_S if holding else GRACE_S)
            self.clock = max(self.clock, self.virtual_time[family])
            started = self.share_so_far()
            self.running += 1
            yield
        finally:
            if started is not None:
                self.virtual_time[family] += (self.share_so_far() - started) / self.weights[family]
                self.running -= 1
            self.holding[family] -= 1
            self.last_turn[family] = self.now()
            self.wake_waiters()

    async def next_change(self, timeout: float) -> None:
        """Wait until a turn ends, or ``timeout`` seconds. Every waiting turn wakes at the end of each turn,
        hundreds of times a second under load, so a wait is a bare future and a timer: no task or lock."""
        loop = asyncio.get_running_loop()
        changed = loop.create_future()
        self.waiters.add(changed)
        timer = loop.call_later(timeout, settle, changed)
        try:
            await changed
        finally:
            timer.cancel()
            self.waiters.discard(changed)

    def wake_waiters(self) -> None:
        for waiter in self.waiters:
            settle(waiter)
        self.waiters.clear()


def settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def fetch_in_priority_order(weights: Mapping[str, int]) -> None:
    """Hand fetched records to Faust by topic priority, and round-robin among partitions of equal priority.

    aiokafka returns at most ``max_poll_records`` per poll from the partitions it holds records
    for, in the order it fetched them; a partition with a backlog keeps its place in front until
    drained, so a topic behind it waited for the whole backlog. Here the partitions of the topics
    with the highest weight (``weights``: topic to weight, 1 when absent) go first, and each
    partition served moves behind the others of its weight.
    """
    original = AIOKafkaConsumerThread._fetch_records

    async def fetch_records(
        self: AIOKafkaConsumerThread, consumer: Any, active_partitions: Any, timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        held = consumer._fetcher._records
        for tp in sorted(held, key=lambda tp: -weights.get(tp.topic, 1)):
            held[tp] = held.pop(tp)
        records = await original(self, consumer, active_partitions, timeout=timeout, max_records=max_records)
        for tp in records:
            if tp in held:
                held[tp] = held.pop(tp)
        return records

    AIOKafkaConsumerThread._fetch_records = fetch_records  # type: ignore[method-assign]
