"""The priority gate: the worker's time in proportion to weight while families are busy together, none lost
while one is alone."""

from __future__ import annotations

import asyncio
import time

from streams.priorities import PriorityGate


class Clock:
    """The gate's time source: the real time, plus what the handlers below add as their events take time."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.seconds


async def handle(
    gate: PriorityGate, clock: Clock, family: str, events: int, order: list[str], cost: float = 0.001,
    retry: bool = False,
) -> None:
    """Handle ``events`` events one at a time, each taking ``cost`` seconds of the worker."""
    for _ in range(events):
        async with gate.turn(family, retry=retry):
            order.append(f"{family} retried" if retry else family)
            clock.seconds += cost
            await asyncio.sleep(0)


def test_busy_families_get_the_worker_in_proportion_to_their_weights() -> None:
    async def run() -> list[str]:
        clock, order = Clock(), []
        gate = PriorityGate({"post": 5, "email": 1}, now=clock)
        await asyncio.gather(handle(gate, clock, "post", 500, order), handle(gate, clock, "email", 500, order))
        return order

    order = asyncio.run(run())
    first = order[:600]
    assert abs(first.count("post") - 500) <= 6 and abs(first.count("email") - 100) <= 6
    assert order.count("email") == 500, "the low-priority family finishes once the other is done"


def test_equal_weights_share_time_not_events() -> None:
    """A family of cheap events is not held to the pace of a family of costly ones."""
    async def run() -> list[str]:
        clock, order = Clock(), []
        gate = PriorityGate({"post": 1, "email": 1}, now=clock)
        await asyncio.gather(
            handle(gate, clock, "post", 1000, order, cost=0.001), handle(gate, clock, "email", 100, order, cost=0.01),
        )
        return order

    order = asyncio.run(run())
    first = order[:550]
    assert abs(first.count("post") - 500) <= 12 and abs(first.count("email") - 50) <= 3


def test_turns_held_at_once_share_the_worker() -> None:
    """Eight emails waiting together on their server are charged what one would be alone."""
    async def run() -> float:
        clock, release = Clock(), asyncio.Event()
        gate = PriorityGate({"email": 1}, now=clock)

        async def one() -> None:
            async with gate.turn("email"):
                await release.wait()

        held = [asyncio.create_task(one()) for _ in range(8)]
        await asyncio.sleep(0)
        clock.seconds += 0.008
        release.set()
        await asyncio.gather(*held)
        return gate.virtual_time["email"]

    assert 0.008 <= asyncio.run(run()) < 0.009


def test_a_family_that_keeps_up_does_not_hold_back_a_backlog() -> None:
    """Events that arrive now and then, each handled at once, leave the rest of the worker to the backlog."""
    async def steady(gate: PriorityGate, clock: Clock, order: list[str]) -> None:
        for _ in range(20):
            await handle(gate, clock, "post", 1, order)
            await asyncio.sleep(0.02)

    async def run() -> list[str]:
        clock, order = Clock(), []
        gate = PriorityGate({"post": 1, "email": 1}, now=clock)
        backlog = asyncio.create_task(handle(gate, clock, "email", 1_000_000, order))
        await steady(gate, clock, order)
        backlog.cancel()
        return order

    order = asyncio.run(run())
    assert order.count("post") == 20 and order.count("email") > 20 * 50, order.count("email")


def test_a_family_alone_never_waits_and_idling_earns_no_credit() -> None:
    async def run() -> list[str]:
        clock, order = Clock(), []
        gate = PriorityGate({"post": 5, "email": 1}, now=clock)
        await handle(gate, clock, "email", 50, order)
        clock.seconds += 0.1
        await asyncio.wait_for(handle(gate, clock, "post", 50, order), timeout=5)
        await asyncio.gather(handle(gate, clock, "post", 100, order), handle(gate, clock, "email", 100, order))
        return order[100:]

    together = asyncio.run(run())
    assert together[:60].count("post") >= 45, "the email family's time alone bought it no extra turns"


def test_equal_weights_and_costs_alternate() -> None:
    async def run() -> list[str]:
        clock, order = Clock(), []
        gate = PriorityGate({"user": 1, "export": 1}, now=clock)
        await asyncio.gather(handle(gate, clock, "user", 100, order), handle(gate, clock, "export", 100, order))
        return order

    order = asyncio.run(run())
    assert abs(order[:100].count("user") - 50) <= 2


def test_retried_attempts_get_their_share_of_the_worker_while_fresh_events_wait() -> None:
    async def run() -> tuple[list[str], float]:
        clock, order = Clock(), []
        gate = PriorityGate({"email": 1, "post": 5}, retried_share=0.1, now=clock)
        await asyncio.gather(
            handle(gate, clock, "email", 500, order), handle(gate, clock, "email", 100, order, retry=True),
        )
        alone = asyncio.get_running_loop().time()
        await asyncio.wait_for(handle(gate, clock, "email", 50, order, retry=True), timeout=5)
        return order, asyncio.get_running_loop().time() - alone

    order, alone_s = asyncio.run(run())
    assert abs(order[:550].count("email retried") - 50) <= 6, "one retried attempt for ten fresh events"
    assert order.count("email retried") == 150, "every retried attempt ran once the fresh events were done"
    assert alone_s < 1, "retried attempts alone do not wait"


def test_a_turn_held_long_sets_its_family_back_by_at_most_a_second() -> None:
    """A retried attempt that waited out a long database outage does not hold the next ones back for as long."""
    async def run() -> list[str]:
        clock, order = Clock(), []
        gate = PriorityGate({"email": 1}, retried_share=0.05, now=clock)
        fresh = asyncio.create_task(handle(gate, clock, "email", 10_000, order))
        await asyncio.sleep(0)
        await handle(gate, clock, "email", 1, order, cost=60, retry=True)
        await handle(gate, clock, "email", 20, order, retry=True)
        await fresh
        return order

    order = asyncio.run(run())
    last_retried = max(n for n, family in enumerate(order) if family == "email retried")
    assert order[last_retried:].count("email") > 5_000, "the retried attempts ran among the fresh events"


def test_fresh_events_go_on_while_a_retried_attempt_waits_on_its_database() -> None:
    """A retried attempt holding its turn while it waits does not idle the worker: no family waits for retried ones."""
    async def run() -> tuple[int, int]:
        clock, order = Clock(), []
        gate = PriorityGate({"email": 1}, retried_share=0.05, now=clock)
        fresh = [asyncio.create_task(handle(gate, clock, "email", 1_000_000, order)) for _ in range(4)]
        await asyncio.sleep(0.05)
        async with gate.turn("email", retry=True):
            order.append("email retried")
            started = len(order)
            await asyncio.sleep(0.1)
            meanwhile = len(order) - started
        for task in fresh:
            task.cancel()
        await asyncio.gather(*fresh, return_exceptions=True)
        return started, meanwhile

    before, meanwhile = asyncio.run(run())
    assert meanwhile > before / 2, (before, meanwhile)
