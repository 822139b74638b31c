"""The relay: sends delayed and retried events on when they are due, without holding up the others.

Each delay-tier topic holds an event for a fixed time, and stamps it with broker time, so a
tier partition is in the order its events are released (append time + the tier's delay). The
relay reads every tier partition from its head. When the head is not yet released it pauses
that partition alone, and resumes it when the head is; the other partitions go on meanwhile.
A released event that is due goes back to its origin topic (to its origin partition, when it
came from one); one that is not yet due waits in the next tier for the time it has left.

Offsets are committed only after the broker acknowledged what was sent, so nothing is lost. A
relay that stops between the two sends an event twice; the agents' handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from streams import metrics
from streams.retry import DUE_AT, ERROR_MESSAGE, ERROR_TYPE, ORIGIN_PARTITION, ORIGIN_TOPIC, read_headers, tier_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hop:
    """Where a released event goes next."""

    topic: str
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class Relay:
    """One relay instance; several workers share the tiers' partitions through a consumer group."""

    def __init__(
        self, brokers: str, group_id: str, client_id: str, tiers: Mapping[str, float], dead_letters: str
    ) -> None:
        self.tiers = dict(tiers)
        self.dead_letters = dead_letters
        self.tier_names = {delay: name for name, delay in self.tiers.items()}
        self.delays = tuple(sorted(self.tier_names))
        self.consumer = AIOKafkaConsumer(
            *self.tiers,
            bootstrap_servers=brokers,
            group_id=group_id,
            client_id=f"{client_id}-relay",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=brokers, client_id=f"{client_id}-relay", acks="all", enable_idempotence=True
        )
        self._resumes: dict[TopicPartition, asyncio.TimerHandle] = {}

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        for handle in self._resumes.values():
            handle.cancel()
        await self.consumer.stop()
        await self.producer.stop()

    def release_time(self, record: ConsumerRecord, headers: Mapping[str, str]) -> float:
        """Epoch seconds when the record may leave its tier: its due time, or when the tier has held it long enough."""
        held_until = record.timestamp / 1000 + self.tiers[record.topic]
        return min(due_at(headers, held_until), held_until)

    def next_hop(self, headers: Mapping[str, str], now: float) -> Hop:
        if ORIGIN_TOPIC not in headers:
            problem = ((ERROR_TYPE, b"MissingOrigin"), (ERROR_MESSAGE, f"no {ORIGIN_TOPIC} header".encode()))
            return Hop(self.dead_letters, headers=problem)
        remaining = due_at(headers, now) - now
        if remaining <= 0:
            partition = headers.get(ORIGIN_PARTITION, "")
            return Hop(headers[ORIGIN_TOPIC], int(partition) if partition.isdigit() else None)
        return Hop(self.tier_names[tier_for(self.delays, remaining)])

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=2000)
            sends: list[asyncio.Future] = []
            commits: dict[TopicPartition, int] = {}
            for partition, records in batches.items():
                for record in records:
                    headers = read_headers(record.headers)
                    now = time.time()
                    release = self.release_time(record, headers)
                    if release > now:
                        self.hold(partition, record.offset, release - now)
                        break
                    hop = self.next_hop(headers, now)
                    sends.append(await self.producer.send(
                        hop.topic, record.value, key=record.key, partition=hop.partition,
                        headers=[*record.headers, *hop.headers],
                    ))
                    metrics.EVENTS_RELAYED.labels(self.destination(hop)).inc()
                    commits[partition] = record.offset + 1
            if sends:
                await asyncio.gather(*sends)
            if commits:
                await self.consumer.commit(commits)

    def destination(self, hop: Hop) -> str:
        if hop.topic in self.tiers:
            return "tier"
        return "dead-letters" if hop.topic == self.dead_letters else "origin"

    def hold(self, partition: TopicPartition, offset: int, seconds: float) -> None:
        """Pause one partition at ``offset`` until its head is released."""
        self.consumer.seek(partition, offset)
        self.consumer.pause(partition)
        previous = self._resumes.pop(partition, None)
        if previous is not None:
            previous.cancel()
        self._resumes[partition] = asyncio.get_running_loop().call_later(seconds, self.resume, partition)

    def resume(self, partition: TopicPartition) -> None:
        self._resumes.pop(partition, None)
        if partition in self.consumer.assignment():
            self.consumer.resume(partition)


def due_at(headers: Mapping[str, str], default: float) -> float:
    """The due time in a record's headers, in epoch seconds."""
    value = headers.get(DUE_AT, "")
    return int(value) / 1000 if value.isdigit() else default


async def relay_forever(make_relay: Callable[[], Relay], restart_after: float = 5.0) -> None:
    """Run a relay until cancelled; a broker error restarts it rather than ending relaying for good."""
    while True:
        relay = make_relay()
        try:
            await relay.start()
            await relay.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("relay failed; restarting in %.0fs", restart_after)
        finally:
            await relay.stop()
        await asyncio.sleep(restart_after)
