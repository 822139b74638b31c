"""Topic priorities: while several families have events to handle, each gets turns in proportion to its weight.

Weights come from the priority of each family's topic (critical 10, high 5, default 1, low 1).
Every agent asks for a turn before it handles an event (or a batch), and the gate keeps a
virtual time per family: handling n events advances it by n / weight. A family goes ahead while
its virtual time is not past that of any other family that is busy at the same moment, so with
a backlog on both, a high-priority family handles five events for each low-priority one. A
family alone never waits, and one that was idle resumes at the others' time, so idling earns it
no credit to spend later (stride scheduling).

Retried attempts of a family take their turns as a family of their own, weighted at
``retried_share`` of it: while fresh events of the family wait, a burst of failing events that
come back for another attempt gets that share of the turns and the fresh events the rest, and
with nothing else waiting the retried attempts run at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

#: A family that had a turn this recently counts as busy: between two events of a backlog its agent
#: holds no turn for a moment, and the others must not take that moment as the end of its backlog.
GRACE_S = 0.05


def retried(family: str) -> str:
    """The name under which the retried attempts of ``family`` take their turns."""
    return f"{family} (retried)"


class PriorityGate:
    def __init__(self, weights: Mapping[str, int], retried_share: float = 1.0) -> None:
        self.weights: dict[str, float] = {
            **weights, **{retried(family): weight * retried_share for family, weight in weights.items()},
        }
        self.virtual_time = dict.fromkeys(self.weights, 0.0)
        self.holding = dict.fromkeys(self.weights, 0)
        self.last_turn = dict.fromkeys(self.weights, float("-inf"))
        self.clock = 0.0
        self.changed = asyncio.Condition()
        self.waiting = 0

    def busy(self, family: str, now: float) -> bool:
        return self.holding[family] > 0 or now - self.last_turn[family] < GRACE_S

    def ahead_of_others(self, family: str) -> bool:
        """True while another busy family is behind ``family`` and should go first."""
        now, own = time.monotonic(), self.virtual_time[family]
        return any(
            other != family and self.virtual_time[other] < own and self.busy(other, now) for other in self.weights
        )

    def resume(self, family: str) -> None:
        """A family back from idling starts at the time of the busy ones (or of the last turn): no saved credit."""
        now = time.monotonic()
        busy = [self.virtual_time[other] for other in self.weights if other != family and self.busy(other, now)]
        self.virtual_time[family] = max(self.virtual_time[family], min(busy, default=self.clock))

    @asynccontextmanager
    async def turn(self, family: str, events: int = 1, retry: bool = False) -> AsyncIterator[None]:
        """Wait for ``family``'s turn (its retried attempts' turn with ``retry``), then hold it while
        ``events`` events are handled."""
        if retry:
            family = retried(family)
        if not self.busy(family, time.monotonic()):
            self.resume(family)
        self.holding[family] += 1
        try:
            while self.ahead_of_others(family):
                self.waiting += 1
                try:
                    async with self.changed:
                        with suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(self.changed.wait(), GRACE_S)
                finally:
                    self.waiting -= 1
            self.clock = max(self.clock, self.virtual_time[family])
            yield
        finally:
            self.virtual_time[family] += events / self.weights[family]
            self.holding[family] -= 1
            self.last_turn[family] = time.monotonic()
            if self.waiting:
                async with self.changed:
                    self.changed.notify_all()


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

    AIOKafkaConsumerThread._fetch_records = fetch_records
