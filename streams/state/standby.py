"""Warm standby copies: a worker tails the changelogs of partitions another worker holds, so taking one over
reads only the changelog's tail instead of all of it.

Every few seconds the standby thread reads the state engine's group at the broker. For each
partition held by another member, the members after its holder in the order of their client ids
keep ``replicas`` copies; those of them that are this worker open the partition's store (the
same folder the engine would use) and read its changelog into it, read_committed, from the
store's position. The engine, before it opens a partition's store, takes it from the standbys
(``release``); they never open a partition the engine holds or is restoring. Both use the
engine's lock for that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.kafka.lag import GroupReader
from streams.kafka_clients import confluent_config
from streams.state.store import PartitionStore

if TYPE_CHECKING:
    from streams.state.engine import StateEngine

logger = logging.getLogger(__name__)

REFRESH_S = 2.0
POLL_SECONDS = 0.5
BATCH = 10_000


def standby_members(holder: str, members: list[str], replicas: int) -> list[str]:
    """The members that keep copies of a partition ``holder`` holds: the ``replicas`` after it, in client-id order."""
    ring = sorted(members)
    if holder not in ring:
        return []
    start = ring.index(holder)
    return [ring[(start + step) % len(ring)] for step in range(1, min(replicas, len(ring) - 1) + 1)]


class Standbys:
    """The standby copies this worker keeps for ``engine``; see the module's docstring."""

    def __init__(self, engine: StateEngine, replicas: int, reader: Callable[[], GroupReader]) -> None:
        self.engine, self.replicas, self.reader = engine, replicas, reader
        self.stores: dict[tuple[str, int], PartitionStore] = {}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def partitions(self, state_name: str) -> list[int]:
        with self.engine.lock:
            return sorted(partition for name, partition in self.stores if name == state_name)

    def start(self) -> None:
        if self.replicas < 1:
            return
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name="state-standby", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(30)
        with self.engine.lock:
            for store in self.stores.values():
                store.close()
            self.stores.clear()

    def release(self, key: tuple[str, int]) -> None:
        """Close the copy of ``key`` so the engine can open its store; its changelog position stays in it."""
        with self.engine.lock:
            store = self.stores.pop(key, None)
            if store is not None:
                store.close()

    def wanted(self) -> set[tuple[str, int]] | None:
        """The (state, partition)s this worker should keep copies of now; None while the group is rebalancing."""
        assignments = self.reader().assignments(self.engine.group_id)
        if assignments is None:
            return None
        own = self.engine.client_id
        members = list(assignments)
        chosen: set[tuple[str, int]] = set()
        for holder, held in assignments.items():
            if holder == own or own not in standby_members(holder, members, self.replicas):
                continue
            for topic, partition in held:
                chosen.update((state.name, partition) for state in self.engine.by_source.get(topic, ()))
        return chosen

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tail_until_stopped()
            except KafkaException as exc:
                logger.warning("standby copies wait for the broker: %s", exc)
            except Exception:
                logger.exception("standby copies failed; they start again")
            self.stopping.wait(REFRESH_S)

    def tail_until_stopped(self) -> None:
        consumer = Consumer(confluent_config(self.engine.kafka, log_level=0, **{
            "group.id": f"{self.engine.group_id}-standby", "enable.auto.commit": False,
            "isolation.level": "read_committed", "auto.offset.reset": "earliest",
        }))
        assigned: set[tuple[str, int]] = set()
        try:
            next_refresh = 0.0
            while not self.stopping.is_set():
                if time.monotonic() >= next_refresh:
                    wanted = self.wanted()
                    if wanted is not None:
                        assigned = self.follow(consumer, wanted)
                    next_refresh = time.monotonic() + REFRESH_S
                if assigned:
                    self.apply(consumer.consume(BATCH, POLL_SECONDS))
                else:
                    self.stopping.wait(POLL_SECONDS)
        finally:
            consumer.close()

    def follow(self, consumer: Consumer, wanted: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """Open the copies newly wanted, close those no longer wanted, and read each changelog from its store's
        position."""
        with self.engine.lock:
            for key in list(self.stores):
                if key not in wanted:
                    self.stores.pop(key).close()
            for key in wanted - set(self.stores):
                if not self.engine.active(key):
                    state = self.engine.state_named(key[0])
                    self.stores[key] = PartitionStore(self.engine.store_path(state, key[1]), state.rank)
            reading = [
                TopicPartition(self.engine.state_named(name).changelog, partition, store.position() + 1)
                for (name, partition), store in self.stores.items()
            ]
        consumer.assign(reading)
        return set(self.stores)

    def apply(self, messages: list[Any]) -> None:
        """Write each partition's run of changelog records into its copy, with the position it reaches."""
        values: dict[tuple[str, int], dict[str, bytes | None]] = {}
        positions: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is not None:
                continue
            state = self.engine.by_changelog.get(cast(str, message.topic()))
            if state is None:
                continue
            key = (state.name, cast(int, message.partition()))
            values.setdefault(key, {})[cast(bytes, message.key()).decode()] = message.value()
            positions[key] = cast(int, message.offset())
        with self.engine.lock:
            for key, changed in values.items():
                store = self.stores.get(key)
                if store is not None:
                    store.write(changed, positions[key])
