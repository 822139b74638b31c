"""The relay: sends delayed and retried events on when they are due, without holding up the others.

Each delay-tier topic holds an event for a fixed time and stamps it with broker time, so a tier
partition is in the order its events have been held long enough (append time + the tier's
delay). The relay reads each tier partition a short horizon ahead of that into a heap ordered by
release time (the due time when that is within the horizon, else the end of the tier's hold),
and sends every event at its own release time, so one event's wait never delays another's.
When the newest event read is still far from the end of its hold, or enough events are held,
the partition is paused until it comes nearer.

A released event that is due goes back to its origin topic (to its origin partition, when it
came from one); one that is not yet due waits in the next tier for the time it has left.
Sends are not waited for one by one: an event counts as relayed when the broker acknowledges
it, and offsets are committed once a second (and before a partition is given up or the relay
stops) up to the oldest event not yet relayed, so nothing is lost. A relay that dies between an
acknowledgement and the next commit sends those events again; the agents' handlers are
idempotent. A commit per event cost the broker a write per event and showed in the throughput
of every worker sharing its cores.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from streams import metrics
from streams.kafka_clients import aiokafka_security
from streams.retry import ERROR_MESSAGE, ERROR_TYPE, ORIGIN_PARTITION, ORIGIN_TOPIC, due_at, read_headers, tier_for
from streams.settings import KafkaSettings
from streams.topics import relay_group_id

logger = logging.getLogger(__name__)

#: How far ahead of its release a partition is read, and how many events it may hold in memory.
HORIZON = 2.0
MAX_HELD = 20_000
#: The longest the loop sleeps: new events are looked for at least this often.
IDLE_WAIT = 0.5
#: Seconds between commits of the tiers' offsets.
COMMIT_INTERVAL = 1.0


@dataclass(frozen=True)
class Hop:
    """Where a released event goes next."""

    topic: str
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class HeldPartition:
    """The events read from one tier partition and not yet relayed."""

    releases: list[tuple[float, int, ConsumerRecord, Mapping[str, str]]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    relayed: set[int] = field(default_factory=set)
    next_offset: int | None = None
    read_ahead_to: float = 0.0
    committed: int | None = None

    def hold(self, release: float, held_until: float, record: ConsumerRecord, headers: Mapping[str, str]) -> None:
        """Hold ``record`` (its headers as ``read_headers`` read them) until ``release``."""
        heapq.heappush(self.releases, (release, record.offset, record, headers))
        heapq.heappush(self.offsets, record.offset)
        self.next_offset = record.offset + 1
        self.read_ahead_to = held_until

    def pop_released(self, now: float) -> list[tuple[ConsumerRecord, Mapping[str, str]]]:
        released = []
        while self.releases and self.releases[0][0] <= now:
            _, _, record, headers = heapq.heappop(self.releases)
            released.append((record, headers))
        return released

    def commit_offset(self) -> int | None:
        """The oldest offset not yet relayed, or the next one to read when every event read was."""
        while self.offsets and self.offsets[0] in self.relayed:
            self.relayed.discard(heapq.heappop(self.offsets))
        return self.offsets[0] if self.offsets else self.next_offset

    def should_pause(self, now: float) -> bool:
        return len(self.releases) >= MAX_HELD or self.read_ahead_to - now > HORIZON


class Relay(ConsumerRebalanceListener):
    """One relay instance; several workers share the tiers' partitions through a consumer group."""

    def __init__(self, kafka: KafkaSettings, tiers: Mapping[str, float], dead_letters: str) -> None:
        self.tiers = dict(tiers)
        self.dead_letters = dead_letters
        self.tier_names = {delay: name for name, delay in self.tiers.items()}
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka.brokers,
            group_id=relay_group_id(kafka.group_id),
            client_id=f"{kafka.client_id}-relay",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=50,
            **aiokafka_security(kafka),
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=kafka.brokers, client_id=f"{kafka.client_id}-relay", acks="all", enable_idempotence=True,
            **aiokafka_security(kafka),
        )
        self.held: dict[TopicPartition, HeldPartition] = {}
        self.send_failure: BaseException | None = None
        self.next_commit = 0.0

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(list(self.tiers), listener=self)

    async def stop(self) -> None:
        try:
            await self.producer.flush()
            await self.commit_relayed()
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Commit what was relayed; what another relay now owns it reads again from there."""
        try:
            await self.producer.flush()
            await self.commit_relayed()
        finally:
            for partition in revoked:
                self.held.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for partition in assigned:
            self.held[partition] = HeldPartition()

    def wait_seconds(self, now: float) -> float:
        """Until the next release, or until a paused partition comes within the horizon."""
        soonest = now + IDLE_WAIT
        for held in self.held.values():
            if held.releases:
                soonest = min(soonest, held.releases[0][0])
            if held.read_ahead_to - HORIZON > now:
                soonest = min(soonest, held.read_ahead_to - HORIZON)
        return max(0.0, soonest - now)

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            batches = await self.consumer.getmany(timeout_ms=round(self.wait_seconds(time.time()) * 1000), max_records=5000)
            for partition, records in batches.items():
                held = self.held.setdefault(partition, HeldPartition())
                for record in records:
                    held_until = record.timestamp / 1000 + self.tiers[record.topic]
                    headers = read_headers(record.headers)
                    held.hold(release_time(held_until, headers), held_until, record, headers)
            await self.relay_released(time.time())
            if time.monotonic() >= self.next_commit:
                await self.commit_relayed()
                self.next_commit = time.monotonic() + COMMIT_INTERVAL
            elif self.send_failure is not None:
                raise self.send_failure
            self.pace(time.time())

    async def relay_released(self, now: float) -> None:
        """Send every event whose release time has come; each counts as relayed once acknowledged."""
        for held in self.held.values():
            for record, headers in held.pop_released(now):
                hop = next_hop(headers, now, self.tier_names, self.dead_letters)
                sent = await self.producer.send(
                    hop.topic, record.value, key=record.key, partition=hop.partition,
                    headers=[*record.headers, *hop.headers],
                )
                sent.add_done_callback(partial(self.acknowledged, held, record.offset))
                destination = self.destination(hop)
                metrics.EVENTS_RELAYED.labels(destination).inc()
                if destination == "origin":
                    metrics.RELAY_LATENESS_SECONDS.observe(time.time() - due_at(headers, now))

    def acknowledged(self, held: HeldPartition, offset: int, sent: asyncio.Future) -> None:
        if sent.cancelled() or sent.exception() is not None:
            self.send_failure = self.send_failure or (sent.exception() or asyncio.CancelledError())
        else:
            held.relayed.add(offset)

    async def commit_relayed(self) -> None:
        """Commit each partition up to its oldest event not yet relayed; a failed send stops the relay first,
        so its event is read again from the last commit by the next one.

        When every event read was relayed, the commit goes to the consumer's position: past the
        markers that end the transactions of the workers' retries, which are not events. Committed
        at the last event instead, the relays' group would lag a marker behind for good.
        """
        if self.send_failure is not None:
            raise self.send_failure
        commits = {}
        assigned = self.consumer.assignment()
        for partition, held in self.held.items():
            offset = held.commit_offset()
            if offset is not None and offset == held.next_offset and partition in assigned:
                offset = max(offset, await self.consumer.position(partition))
            if offset is not None and offset != held.committed:
                commits[partition] = offset
        if commits:
            await self.consumer.commit(commits)
            for partition, offset in commits.items():
                self.held[partition].committed = offset

    def pace(self, now: float) -> None:
        """Read a partition only while what it holds is within the horizon and bounded in number."""
        paused = self.consumer.paused()
        for partition, held in self.held.items():
            if held.should_pause(now):
                if partition not in paused:
                    self.consumer.pause(partition)
            elif partition in paused:
                self.consumer.resume(partition)

    def destination(self, hop: Hop) -> str:
        if hop.topic in self.tiers:
            return "tier"
        return "dead-letters" if hop.topic == self.dead_letters else "origin"


def release_time(held_until: float, headers: Mapping[str, str]) -> float:
    """When to send a record on: at its due time when that is within the horizon, else when its tier's hold ends.

    An event due soon after its hold ends waits in memory rather than taking one more trip
    through a tier, which would make it late by that trip's time.
    """
    due = due_at(headers, held_until)
    return due if due <= held_until + HORIZON else held_until


def next_hop(headers: Mapping[str, str], now: float, tier_names: Mapping[float, str], dead_letters: str) -> Hop:
    """A due event goes to its origin, one with time left to the tier that fits it, one with no origin to the dead letters."""
    if ORIGIN_TOPIC not in headers:
        problem = ((ERROR_TYPE, b"MissingOrigin"), (ERROR_MESSAGE, f"no {ORIGIN_TOPIC} header".encode()))
        return Hop(dead_letters, headers=problem)
    remaining = due_at(headers, now) - now
    if remaining <= 0:
        partition = headers.get(ORIGIN_PARTITION, "")
        return Hop(headers[ORIGIN_TOPIC], int(partition) if partition.isdigit() else None)
    return Hop(tier_names[tier_for(tuple(sorted(tier_names)), remaining)])


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
