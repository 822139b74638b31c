"""Lanes and in-order acknowledgements: several handlers at once, one key's in order, commits never past one in flight."""

from __future__ import annotations

import asyncio
import random

import pytest

from streams.acks import InOrderAcks
from streams.lanes import Lanes


class Recorder:
    """Work items that note when they start and finish, and how many ran at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.log: list[tuple[str, object, int]] = []

    def work(self, key: object, n: int, seconds: float):
        async def run() -> None:
            self.running += 1
            self.most = max(self.most, self.running)
            self.log.append(("start", key, n))
            await asyncio.sleep(seconds)
            self.log.append(("end", key, n))
            self.running -= 1
        return run


def test_up_to_the_limit_of_different_keys_run_at_once() -> None:
    async def scenario() -> Recorder:
        lanes, recorder = Lanes(4), Recorder()
        for n in range(20):
            await lanes.start(f"k{n}", recorder.work(f"k{n}", n, 0.01))
        await lanes.drain()
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.most == 4
    assert sorted(n for kind, _, n in recorder.log if kind == "end") == list(range(20))


def test_events_of_one_key_run_one_after_another_in_arrival_order() -> None:
    async def scenario() -> Recorder:
        lanes, recorder, rng = Lanes(8), Recorder(), random.Random(3)
        for n in range(60):
            key = rng.choice(["a", "b", "c"])
            await lanes.start(key, recorder.work(key, n, rng.uniform(0, 0.01)))
        await lanes.drain()
        return recorder

    recorder = asyncio.run(scenario())
    for key in "abc":
        steps = [(kind, n) for kind, k, n in recorder.log if k == key]
        assert steps, key
        starts = [n for kind, n in steps if kind == "start"]
        assert starts == sorted(starts)
        # Never two of one key at once: every start is followed by its own end.
        assert all(steps[i][0] == "start" and steps[i + 1] == ("end", steps[i][1]) for i in range(0, len(steps), 2))
    assert recorder.most > 1


def test_events_without_a_key_are_not_ordered_against_each_other() -> None:
    async def scenario() -> Recorder:
        lanes, recorder = Lanes(3), Recorder()
        for n in range(3):
            await lanes.start(None, recorder.work(None, n, 0.05))
        await lanes.drain()
        return recorder

    assert asyncio.run(scenario()).most == 3


def test_an_exception_that_escapes_a_handler_stops_the_next_start_and_the_drain() -> None:
    async def failing() -> None:
        raise RuntimeError("producer gone")

    async def scenario() -> list[str]:
        lanes, seen = Lanes(2), []
        await lanes.start("a", failing)
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="producer gone"):
            await lanes.start("b", failing)
        seen.append("start raised")
        with pytest.raises(RuntimeError, match="producer gone"):
            await lanes.drain()
        seen.append("drain raised")
        return seen

    assert asyncio.run(scenario()) == ["start raised", "drain raised"]


def test_stopping_lets_short_handlers_finish_and_cancels_the_rest() -> None:
    async def scenario() -> tuple[Recorder, float]:
        lanes, recorder = Lanes(4), Recorder()
        await lanes.start("quick", recorder.work("quick", 0, 0.01))
        await lanes.start("slow", recorder.work("slow", 1, 30))
        loop = asyncio.get_running_loop()
        began = loop.time()
        await lanes.stop(0.2)
        await asyncio.sleep(0)
        return recorder, loop.time() - began

    recorder, took = asyncio.run(scenario())
    assert ("end", "quick", 0) in recorder.log
    assert ("end", "slow", 1) not in recorder.log
    assert took < 5


class FakeEvent:
    """Just enough of a Faust event for InOrderAcks: its partition, and whether it was acknowledged."""

    def __init__(self, partition: int, offset: int, acked: list[tuple[int, int]]) -> None:
        self.message = type("Message", (), {"tp": ("topic", partition), "offset": offset})()
        self.acked = acked

    def ack(self) -> bool:
        self.acked.append((self.message.tp[1], self.message.offset))
        return True


def test_acknowledgements_follow_offset_order_per_partition_whatever_order_events_finish_in() -> None:
    acked: list[tuple[int, int]] = []
    acks = InOrderAcks()
    done = {(p, o): acks.received(FakeEvent(p, o, acked)) for o in range(4) for p in (0, 1)}
    done[(0, 2)]()
    done[(0, 1)]()
    done[(1, 0)]()
    assert acked == [(1, 0)], "offset 0 of partition 0 is still in flight, so 1 and 2 wait"
    done[(0, 0)]()
    assert acked == [(1, 0), (0, 0), (0, 1), (0, 2)]
    done[(1, 3)]()
    done[(0, 3)]()
    done[(1, 1)]()
    done[(1, 2)]()
    assert acked == [(1, 0), (0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
