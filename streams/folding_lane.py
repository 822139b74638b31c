"""A folding lane: per-partition stream state kept beside Faust's agents rather than through them.

Faust hands events to an agent one at a time (fetcher, conductor, stream, agent) and sends a
changelog record for each table write; that path tops out near 4,000 events/s per core however
little the fold costs. State that is a pure fold of one topic needs none of it. A lane reads
batches straight from librdkafka in a thread of its own and folds each partition's run of a batch
in one call. Once per interval it writes the keys that changed: first to its compacted changelog
(the source's partition for partition), then to its local RocksDB store, and only then does it
commit the source offsets. Readers see only what the changelog holds.

Every value remembers the offset of the last source event folded into it, and a fold skips
events at or below it, so an event read again after a crash or a rebalance never counts twice,
however far the writes had got. The lane has a consumer group of its own; for each partition it
is given it loads its local store and then reads the changelog past the store's position.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import mode
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from rocksdict import Options, Rdict, WriteBatch

from streams.admin import ensure_topics
from streams.errors import BrokerUnavailableError
from streams.kafka_clients import confluent_config
from streams.settings import KafkaSettings

logger = logging.getLogger(__name__)

V = TypeVar("V")
#: Folds one partition's messages (in offset order) into its state; returns the keys it changed.
Fold = Callable[[Mapping[str, V], int, Sequence[Message]], Mapping[str, V]]

POLL_SECONDS = 0.1
#: How long a write waits for the broker before it is tried again with the newer values.
FLUSH_SECONDS = 10.0
RESTART_SECONDS = 1.0
#: Store keys: ``<partition>/<key>`` for values, and this prefix plus the partition for the changelog offset held.
POSITION = b"\x00position/"


def lane_group(group_id: str, name: str) -> str:
    """The consumer group of the lane ``name`` of the app ``group_id``."""
    return f"{group_id}-{name}"


def store_key(partition: int, key: str) -> bytes:
    return f"{partition}/{key}".encode()


class LaneStore:
    """The lane's local RocksDB copy: each partition's values, and the last changelog offset they include."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.db = Rdict(str(path), Options(raw_mode=True))

    def load(self, partition: int) -> tuple[dict[str, bytes], int]:
        prefix = store_key(partition, "")
        values = {}
        for key, value in cast(Iterator[tuple[bytes, bytes]], self.db.items(from_key=prefix)):
            if not key.startswith(prefix):
                break
            values[key[len(prefix):].decode()] = value
        position = cast(bytes | None, self.db.get(POSITION + str(partition).encode()))
        return values, -1 if position is None else int(position)

    def save(self, values: Mapping[int, Mapping[str, bytes]], positions: Mapping[int, int]) -> None:
        batch = WriteBatch(raw_mode=True)
        for partition, changed in values.items():
            for key, value in changed.items():
                batch.put(store_key(partition, key), value)
        for partition, position in positions.items():
            batch.put(POSITION + str(partition).encode(), str(position).encode())
        self.db.write(batch)

    def clear(self, partition: int) -> None:
        values, _ = self.load(partition)
        batch = WriteBatch(raw_mode=True)
        for key in values:
            batch.delete(store_key(partition, key))
        batch.delete(POSITION + str(partition).encode())
        self.db.write(batch)

    def close(self) -> None:
        self.db.close()


class FoldingLane(Generic[V]):
    """Folds ``source`` into per-partition state with ``fold``; see the module's docstring.

    ``name`` names the state (like a table's name) and the lane's consumer group, ``<group id>-<name>``.
    """

    def __init__(
        self, name: str, kafka: KafkaSettings, source: str, changelog: str, store: Path,
        fold: Fold[V], dumps: Callable[[V], bytes], loads: Callable[[bytes], V], batch_size: int, interval: float,
        partitions: int, replication_factor: int,
    ) -> None:
        self.name, self.kafka, self.group_id = name, kafka, lane_group(kafka.group_id, name)
        self.topic_shape = partitions, replication_factor
        self.source, self.changelog, self.store_path = source, changelog, store
        self.fold, self.dumps, self.loads = fold, dumps, loads
        self.batch_size, self.interval = batch_size, interval
        self.lock = threading.Lock()
        self.written: dict[int, dict[str, V]] = {}
        self.working: dict[int, dict[str, V]] = {}
        self.dirty: dict[int, dict[str, V]] = {}
        self.positions: dict[int, int] = {}
        self.changelog_ends: dict[int, int] = {}
        self.failed_sends = 0
        self.stopping = threading.Event()
        self.joined = threading.Event()
        self.thread: threading.Thread | None = None
        self.store: LaneStore | None = None
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None

    def items(self) -> list[tuple[str, V]]:
        """Every key of this worker's partitions, as the changelog holds it."""
        with self.lock:
            return [item for values in self.written.values() for item in values.items()]

    def partitions(self) -> list[int]:
        with self.lock:
            return sorted(self.written)

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def state(self) -> str:
        """'stopped'; 'joining' until its consumer group has first assigned it partitions (none at all, when
        there are more workers than partitions), so a health check does not call it ready before that; 'running'."""
        if not self.running():
            return "stopped"
        return "running" if self.joined.is_set() else "joining"

    def start(self) -> None:
        self.store = LaneStore(self.store_path)
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name=f"lane-{self.name}", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what was folded, commit, leave the group and close the store."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                logger.error("lane %s did not stop within %.0fs", self.name, timeout)
                return
        if self.store is not None:
            self.store.close()
            self.store = None

    def run(self) -> None:
        """Fold until stopped; after an error, start again from what was written (no event counts twice)."""
        while not self.stopping.is_set():
            try:
                self.fold_until_stopped()
            except (BrokerUnavailableError, KafkaException) as exc:
                logger.warning("lane %s waits for the broker: %s", self.name, exc)
            except Exception:
                logger.exception("lane %s failed; it starts again from its written state", self.name)
            self.forget(list(self.working))
            self.stopping.wait(RESTART_SECONDS)

    def fold_until_stopped(self) -> None:
        ensure_topics(self.kafka, {self.changelog: {"cleanup.policy": "compact"}}, *self.topic_shape)
        client_id = f"{self.kafka.client_id}-{self.name}"
        self.producer = Producer(confluent_config(
            self.kafka, **{"client.id": client_id, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 5},
        ))
        self.consumer = Consumer(confluent_config(
            self.kafka, **{"client.id": client_id, "group.id": self.group_id,
                           "enable.auto.commit": False, "auto.offset.reset": self.kafka.auto_offset_reset,
                           "isolation.level": "read_committed"},
        ))
        self.joined.clear()
        self.consumer.subscribe([self.source], on_assign=self.assigned, on_revoke=self.revoked, on_lost=self.lost)
        try:
            next_write = time.monotonic() + self.interval
            while not self.stopping.is_set():
                self.fold_batch(self.consumer.consume(self.batch_size, POLL_SECONDS))
                if time.monotonic() >= next_write:
                    self.write(list(self.working))
                    next_write = time.monotonic() + self.interval
        finally:
            self.consumer.close()
            self.producer.flush(FLUSH_SECONDS)
            self.consumer = self.producer = None

    def fold_batch(self, messages: list[Message]) -> None:
        for partition, run in itertools.groupby(messages, Message.partition):
            folded = []
            for message in run:
                error = message.error()
                if error is None:
                    folded.append(message)
                elif error.code() != KafkaError._PARTITION_EOF:
                    logger.warning("lane %s: %s", self.name, error.str())
            if partition is None or not folded or (working := self.working.get(partition)) is None:
                continue
            changed = self.fold(working, partition, folded)
            working.update(changed)
            self.dirty[partition].update(changed)
            self.positions[partition] = cast(int, folded[-1].offset()) + 1

    def write(self, partitions: Iterable[int], wait: bool = False) -> bool:
        """Send the changed values, store them, commit the source offsets; an unsent write waits for the next."""
        partitions = [partition for partition in partitions if partition in self.positions]
        if not partitions:
            return True
        assert self.producer is not None and self.consumer is not None and self.store is not None, "the lane runs"
        encoded = {partition: {key: self.dumps(value) for key, value in self.dirty[partition].items()}
                   for partition in partitions}
        self.failed_sends = 0
        for partition, changed in encoded.items():
            for key, value in changed.items():
                self.send(key, value, partition)
        unsent = self.producer.flush(FLUSH_SECONDS)
        if unsent or self.failed_sends:
            logger.warning("lane %s: %d changelog records not acknowledged; writing again next time",
                           self.name, unsent + self.failed_sends)
            return False
        self.store.save(encoded, {partition: self.changelog_ends[partition]
                                  for partition in partitions if partition in self.changelog_ends})
        with self.lock:
            for partition in partitions:
                self.written[partition].update(self.dirty[partition])
        offsets = [TopicPartition(self.source, partition, self.positions.pop(partition)) for partition in partitions]
        for partition in partitions:
            self.dirty[partition] = {}
        if wait:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        else:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        return True

    def send(self, key: str, value: bytes, partition: int) -> None:
        assert self.producer is not None, "the lane runs"
        while True:
            try:
                self.producer.produce(self.changelog, value, key.encode(), partition=partition, on_delivery=self.sent)
                return
            except BufferError:
                self.producer.poll(0.1)

    def sent(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed_sends += 1
            logger.warning("lane %s: changelog record not sent: %s", self.name, error.str())
            return
        partition, offset = cast(int, message.partition()), cast(int, message.offset())
        self.changelog_ends[partition] = max(offset, self.changelog_ends.get(partition, -1))

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.restore(tp.partition)
        logger.info("lane %s: partitions %s restored", self.name, sorted(tp.partition for tp in partitions))
        self.joined.set()

    def revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Write and commit before another worker takes over; unsent records are dropped, not sent after its."""
        owned = [tp.partition for tp in partitions]
        if not self.write(owned, wait=True) and self.producer is not None:
            self.producer.purge(in_queue=True, in_flight=False)
            logger.warning("lane %s: partitions %s given up unwritten; their next owner reads them again",
                           self.name, owned)
        self.forget(owned)

    def lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Another worker owns these now; what was not written is read again by it."""
        self.forget([tp.partition for tp in partitions])

    def forget(self, partitions: Iterable[int]) -> None:
        partitions = list(partitions)
        with self.lock:
            for partition in partitions:
                self.written.pop(partition, None)
        for partition in partitions:
            for held in (self.working, self.dirty, self.positions):
                held.pop(partition, None)

    def restore(self, partition: int) -> None:
        """The partition's state: the local store, then every changelog record past the store's position."""
        assert self.store is not None, "the lane runs"
        stored, position = self.store.load(partition)
        values = {key: self.loads(value) for key, value in stored.items()}
        reader = Consumer(confluent_config(
            self.kafka, **{"group.id": f"{self.group_id}-restore", "enable.auto.commit": False,
                           "isolation.level": "read_committed"},
        ))
        try:
            low, high = reader.get_watermark_offsets(TopicPartition(self.changelog, partition), timeout=FLUSH_SECONDS)
            if position >= high or position < low - 1:
                self.store.clear(partition)
                values, position = {}, -1
            changelog = TopicPartition(self.changelog, partition, max(low, position + 1))
            reader.assign([changelog])
            while max(changelog.offset, reader.position([changelog])[0].offset) < high and not self.stopping.is_set():
                for message in reader.consume(1000, POLL_SECONDS):
                    if message.error() is not None:
                        continue
                    key, value = cast(bytes, message.key()).decode(), message.value()
                    if value is None:
                        values.pop(key, None)
                    else:
                        values[key] = self.loads(value)
                    position = cast(int, message.offset())
        finally:
            reader.close()
        with self.lock:
            self.written[partition] = dict(values)
        self.working[partition] = dict(values)
        self.dirty[partition] = {}
        self.changelog_ends[partition] = position


class LaneService(mode.Service):
    """Runs a lane for as long as the worker runs; subclass it with ``lane`` set and give it to ``app.service``."""

    lane: FoldingLane[Any]

    async def on_start(self) -> None:
        self.lane.start()

    async def on_stop(self) -> None:
        await self.loop.run_in_executor(None, self.lane.stop)
