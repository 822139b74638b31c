"""The priority gate: turns in proportion to weight while families are busy together, none lost while one is alone."""

from __future__ import annotations

import asyncio

from streams.priorities import PriorityGate


async def handle(gate: PriorityGate, family: str, events: int, order: list[str], retry: bool = False) -> None:
    for _ in range(events):
        async with gate.turn(family, retry=retry):
            order.append(f"{family} retried" if retry else family)
            await asyncio.sleep(0)


def test_busy_families_take_turns_in_proportion_to_their_weights() -> None:
    async def run() -> list[str]:
        gate, order = PriorityGate({"post": 5, "email": 1}), []
        await asyncio.gather(handle(gate, "post", 500, order), handle(gate, "email", 500, order))
        return order

    order = asyncio.run(run())
    first = order[:600]
    assert abs(first.count("post") - 500) <= 6 and abs(first.count("email") - 100) <= 6
    assert order.count("email") == 500, "the low-priority family finishes once the other is done"


def test_a_family_alone_never_waits_and_idling_earns_no_credit() -> None:
    async def run() -> list[str]:
        gate, order = PriorityGate({"post": 5, "email": 1}), []
        await handle(gate, "email", 50, order)
        await asyncio.sleep(0.1)
        await asyncio.wait_for(handle(gate, "post", 50, order), timeout=5)
        await asyncio.gather(handle(gate, "post", 100, order), handle(gate, "email", 100, order))
        return order[100:]

    together = asyncio.run(run())
    assert together[:60].count("post") >= 45, "the email family's time alone bought it no extra turns"


def test_equal_weights_alternate() -> None:
    async def run() -> list[str]:
        gate, order = PriorityGate({"user": 1, "export": 1}), []
        await asyncio.gather(handle(gate, "user", 100, order), handle(gate, "export", 100, order))
        return order

    order = asyncio.run(run())
    assert abs(order[:100].count("user") - 50) <= 2


def test_retried_attempts_get_their_share_of_turns_while_fresh_events_wait() -> None:
    async def run() -> tuple[list[str], float]:
        gate, order = PriorityGate({"email": 1, "post": 5}, retried_share=0.1), []
        await asyncio.gather(handle(gate, "email", 500, order), handle(gate, "email", 100, order, retry=True))
        alone = asyncio.get_running_loop().time()
        await asyncio.wait_for(handle(gate, "email", 50, order, retry=True), timeout=5)
        return order, asyncio.get_running_loop().time() - alone

    order, alone_s = asyncio.run(run())
    assert abs(order[:550].count("email retried") - 50) <= 6, "one retried attempt for ten fresh events"
    assert order.count("email retried") == 150, "every retried attempt ran once the fresh events were done"
    assert alone_s < 1, "retried attempts alone do not wait"
