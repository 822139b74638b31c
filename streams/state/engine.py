"""The transactional state engine: per-partition folds of source topics into RocksDB, exactly once.

One thread per worker runs one consumer (group ``<group id>-state``) over every state's source
and one transactional producer. It folds each partition's run of a consumed batch in one call,
keeps what changed in memory, and every ``state.batch_window`` commits one Kafka transaction:
each changed key's value to its state's compacted changelog (the source's partition for
partition), then the source offsets, through ``send_offsets_to_transaction`` with the consumer's
group metadata. Only once the transaction has committed does it write the values, with their
changelog position, to the partitions' local stores, which the readers (the web view) see.

So the changelog, the stores and the source offsets move together, as in Kafka Streams'
exactly_once_v2 (KIP-447). A worker that has lost its partitions, because it stalled past its
session while another took them over, is refused at ``send_offsets_to_transaction``: its
transaction is aborted and nothing of it becomes visible. Any failed commit makes the engine
start over: it leaves the group, drops what it had not committed, and joins again, reading each
partition's store and the changelog past the store's position before it folds anything.

When partitions are assigned, their committed source offsets are read first: that waits for any
transaction still open on them (a stalled former owner's) to commit or abort, so the changelog is
then restored up to a point that matches the offsets.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import mode
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from streams import metrics
from streams.admin import ensure_topics
from streams.errors import BrokerUnavailableError
from streams.kafka.lag import GroupReader
from streams.kafka.partitions import partition_of
from streams.kafka_clients import confluent_config
from streams.settings import KafkaSettings
from streams.state.changelog import Restoring, restore
from streams.state.outputs import Outputs
from streams.state.standby import Standbys
from streams.state.store import PartitionStore, Rank

logger = logging.getLogger(__name__)

V = TypeVar("V")
#: Folds one partition's messages (in offset order) into its state, sending what else it sends to the outputs;
#: returns the keys it changed and their values.
Fold = Callable[[Mapping[str, V], int, Sequence[Message], Outputs], Mapping[str, V]]

POLL_SECONDS = 0.1
TIMEOUT = 30.0
RESTART_SECONDS = 1.0
#: How long the broker lets a transaction stay open before it aborts it: what a stalled instance
#: holding one open can delay the next owner of its partitions.
TRANSACTION_TIMEOUT_S = 10.0
#: Between the client id and the web address in the client id of the engine's consumer.
MEMBER_ADDRESS = "@"
#: Tries of a commit that failed with an error the broker calls retriable.
COMMIT_TRIES = 3


@dataclass(frozen=True)
class State(Generic[V]):
    """A named state: what it folds (``source``), how, where it is changelogged, and how its values are encoded;
    with ``rank``, its stores keep its values in that order too (``StateEngine.ranked``)."""

    name: str
    source: str
    changelog: str
    fold: Fold[V]
    dumps: Callable[[V], bytes]
    loads: Callable[[bytes], V]
    rank: Rank | None = None


class PartitionView(Mapping[str, V]):
    """A partition's values as a fold sees them: those changed since the last commit, over the store's."""

    def __init__(self, state: State[V], store: PartitionStore, changed: dict[str, V]) -> None:
        self.state, self.store, self.changed = state, store, changed

    def __getitem__(self, key: str) -> V:
        if key in self.changed:
            return self.changed[key]
        stored = self.store.get(key)
        if stored is None:
            raise KeyError(key)
        return self.state.loads(stored)

    def __iter__(self) -> Iterator[str]:
        return iter({key for key, _ in self.store.items()} | set(self.changed))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class StateEngine:
    """Runs ``states`` in a thread of their own; see the module's docstring."""

    def __init__(
        self, kafka: KafkaSettings, group_id: str, states: Sequence[State[Any]], data_dir: Path, batch_size: int,
        commit_interval: float, session_timeout: float, partitions: int, replication_factor: int, dead_letters: str,
        advertised: str, standby_replicas: int = 0,
    ) -> None:
        """``advertised`` is where this worker's web view is reached (host:port); the group's members name theirs
        in their client id, so any worker can tell which one holds a partition (``member_address``)."""
        self.kafka, self.group_id, self.states = kafka, group_id, list(states)
        self.partition_count, self.dead_letters, self.advertised = partitions, dead_letters, advertised
        self.client_id = f"{kafka.client_id}-state{MEMBER_ADDRESS}{advertised}"
        self.standbys = Standbys(self, standby_replicas, self.group_reader)
        self._group_reader: GroupReader | None = None
        self.data_dir, self.batch_size, self.commit_interval = data_dir, batch_size, commit_interval
        self.session_timeout = session_timeout
        self.topic_shape = partitions, replication_factor
        self.by_source: dict[str, list[State[Any]]] = {}
        for state in self.states:
            self.by_source.setdefault(state.source, []).append(state)
        self.by_changelog = {state.changelog: state for state in self.states}
        #: Guards ``stores`` against the readers; held while a reader iterates one.
        self.lock = threading.RLock()
        self.stores: dict[tuple[str, int], PartitionStore] = {}
        self.changed: dict[tuple[str, int], dict[str, Any]] = {}
        self.outputs: dict[tuple[str, int], Outputs] = {}
        self.offsets: dict[tuple[str, int], int] = {}
        #: The source offsets last committed, per (topic, partition) held.
        self.committed: dict[tuple[str, int], int] = {}
        self.changelog_ends: dict[tuple[str, int], int] = {}
        self.restoring: dict[tuple[str, int], Restoring] = {}
        self.stopping = threading.Event()
        self.joined = threading.Event()
        self.thread: threading.Thread | None = None
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self.committing_allowed = False
        #: Times the engine started over after a failure.
        self.restarts = 0

    # Readers, from any thread: they see committed values only.

    def items(self, state: State[V]) -> list[tuple[str, V]]:
        """Every key of ``state`` in this worker's partitions, as the changelog holds it."""
        with self.lock:
            return [
                (key, state.loads(value))
                for (name, _), store in self.stores.items() if name == state.name
                for key, value in store.items()
            ]

    def get(self, state: State[V], key: str) -> V | None:
        """``key``'s committed value, if its partition is held here and has one."""
        with self.lock:
            store = self.stores.get((state.name, partition_of(key, self.partition_count)))
            value = None if store is None else store.get(key)
        return None if value is None else state.loads(value)

    def holds(self, state: State[Any], key: str) -> bool:
        """Whether ``key``'s partition of ``state`` is held, restored, here."""
        with self.lock:
            return (state.name, partition_of(key, self.partition_count)) in self.stores

    def held_items(self, state: State[V]) -> tuple[list[int], list[tuple[str, V]]]:
        """The partitions of ``state`` held here and every key in them, read together."""
        with self.lock:
            return self.partitions(state), self.items(state)

    def held_ranked(
        self, state: State[V], limit: int, accept: Callable[[V], bool],
    ) -> tuple[list[int], list[tuple[str, V]]]:
        """The partitions of ``state`` held here and ``ranked`` over them, read together."""
        with self.lock:
            return self.partitions(state), self.ranked(state, limit, accept)

    def ranked(self, state: State[V], limit: int, accept: Callable[[V], bool]) -> list[tuple[str, V]]:
        """Up to ``limit`` accepted values of each of this worker's partitions, best first by ``state.rank``."""
        best: list[tuple[str, V]] = []
        with self.lock:
            for (name, _), store in self.stores.items():
                if name != state.name:
                    continue
                taken = 0
                for key, raw in store.ranked():
                    value = state.loads(raw)
                    if accept(value):
                        best.append((key, value))
                        taken += 1
                        if taken == limit:
                            break
        return best

    def active(self, key: tuple[str, int]) -> bool:
        """Whether the engine holds, or is restoring, this (state, partition); call with ``lock`` held."""
        return key in self.stores or key in self.restoring

    def store_path(self, state: State[Any], partition: int) -> Path:
        return self.data_dir / state.name / str(partition)

    def group_reader(self) -> GroupReader:
        """A reader of the engine's group, for the standbys, made on first use."""
        if self._group_reader is None:
            self._group_reader = GroupReader(self.kafka)
        return self._group_reader

    def estimated_keys(self, state: State[Any]) -> int:
        with self.lock:
            return sum(store.estimated_keys() for (name, _), store in self.stores.items() if name == state.name)

    def partitions(self, state: State[Any]) -> list[int]:
        with self.lock:
            return sorted(partition for name, partition in self.stores if name == state.name)

    def standby_partitions(self, state: State[Any]) -> list[int]:
        return self.standbys.partitions(state.name)

    def restores(self, state: State[Any]) -> list[Restoring]:
        """The restores of ``state``'s partitions under way or done since they were assigned here."""
        with self.lock:
            return [progress for (name, _), progress in self.restoring.items() if name == state.name]

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def status(self) -> str:
        """'stopped'; 'joining' until the group first assigns it partitions (perhaps none, with more workers than
        partitions) and they are restored; 'running'."""
        if not self.running():
            return "stopped"
        return "running" if self.joined.is_set() else "joining"

    # The engine's thread.

    def start(self) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self.run, name="state-engine", daemon=True)
        self.thread.start()
        self.standbys.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what was folded, leave the group and close the stores."""
        self.stopping.set()
        self.standbys.stop()
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                logger.error("state engine did not stop within %.0fs", timeout)
        if self._group_reader is not None:
            self._group_reader.close()
            self._group_reader = None

    def run(self) -> None:
        """Fold until stopped; after a failure, start again from what was committed."""
        while not self.stopping.is_set():
            try:
                self.fold_until_stopped()
            except (BrokerUnavailableError, KafkaException) as exc:
                logger.warning("state engine starts again from what was committed: %s", exc)
            except Exception:
                logger.exception("state engine failed; it starts again from what was committed")
            else:
                continue
            self.restarts += 1
            metrics.STATE_ENGINE_RESTARTS.inc()
            self.forget(list(self.stores) + list(self.restoring))
            self.stopping.wait(RESTART_SECONDS)

    def fold_until_stopped(self) -> None:
        ensure_topics(
            self.kafka, {state.changelog: {"cleanup.policy": "compact"} for state in self.states}, *self.topic_shape,
        )
        client_id = self.client_id
        self.producer = Producer(confluent_config(self.kafka, log_level=0, **{
            "client.id": client_id, "transactional.id": f"{self.group_id}-{uuid.uuid4()}",
            "transaction.timeout.ms": round(TRANSACTION_TIMEOUT_S * 1000), "linger.ms": 5,
            "partitioner": "murmur2_random",
        }))
        self.producer.init_transactions(TIMEOUT)
        self.consumer = Consumer(confluent_config(self.kafka, log_level=0, **{
            "client.id": client_id, "group.id": self.group_id, "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": self.kafka.auto_offset_reset,
            "isolation.level": "read_committed", "session.timeout.ms": round(self.session_timeout * 1000),
            "heartbeat.interval.ms": round(self.session_timeout * 1000 / 3),
        }))
        self.joined.clear()
        self.committing_allowed = True
        self.consumer.subscribe(
            list(self.by_source), on_assign=self.assigned, on_revoke=self.revoked, on_lost=self.lost,
        )
        try:
            next_commit = time.monotonic() + self.commit_interval
            while not self.stopping.is_set():
                self.fold_batch(self.consumer.consume(self.batch_size, POLL_SECONDS))
                if time.monotonic() >= next_commit:
                    self.commit()
                    next_commit = time.monotonic() + self.commit_interval
            self.commit()
        except BaseException:
            self.committing_allowed = False
            raise
        finally:
            self.close_clients()

    def close_clients(self) -> None:
        """Leave the group (committing on the way when the engine is sound) and close the producer."""
        try:
            if self.consumer is not None:
                self.consumer.close()
        finally:
            self.committing_allowed = False
            self.consumer = None
            if self.producer is not None:
                self.producer.flush(0)
            self.producer = None

    def fold_batch(self, messages: list[Message]) -> None:
        for (topic, partition), run in itertools.groupby(messages, lambda message: (message.topic(), message.partition())):
            folded = []
            for message in run:
                error = message.error()
                if error is None:
                    folded.append(message)
                elif error.fatal():
                    raise KafkaException(error)
                else:
                    logger.warning("state engine: %s", error.str())
            if not folded or topic is None or partition is None:
                continue
            folds = [(state, self.stores.get((state.name, partition))) for state in self.by_source.get(topic, ())]
            if not folds or any(store is None for _, store in folds):
                continue
            outputs = self.outputs.setdefault((topic, partition), Outputs(self.dead_letters))
            for state, store in folds:
                changed = self.changed.setdefault((state.name, partition), {})
                view = PartitionView(state, cast(PartitionStore, store), changed)
                changed.update(state.fold(view, partition, folded, outputs))
            self.offsets[(topic, partition)] = cast(int, folded[-1].offset()) + 1

    def commit(self) -> None:
        """One transaction: every changed value to its changelog, and the source offsets; then the stores."""
        assert self.producer is not None and self.consumer is not None, "the engine runs"
        self.offsets.update(self.moved_past_markers())
        if not self.offsets:
            return
        encoded = {
            (name, partition): {key: self.state_named(name).dumps(value) for key, value in values.items()}
            for (name, partition), values in self.changed.items()
        }
        self.producer.begin_transaction()
        for (name, partition), values in encoded.items():
            changelog = self.state_named(name).changelog
            for key, value in values.items():
                self.produce(changelog, key.encode(), value, partition)
        for outputs in self.outputs.values():
            for record in outputs.records:
                self.produce(record.topic, record.key, record.value, headers=list(record.headers))
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in self.offsets.items()]
        try:
            self.producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), TIMEOUT)
            self.commit_transaction()
        except KafkaException as exc:
            self.committing_allowed = False
            if exc.args[0].txn_requires_abort():
                self.producer.abort_transaction(TIMEOUT)
            logger.warning("state engine: transaction refused, nothing of it is visible: %s", exc.args[0].str())
            raise
        self.producer.poll(0)
        with self.lock:
            for held, values in encoded.items():
                if held in self.stores and held in self.changelog_ends:
                    self.stores[held].write(values, self.changelog_ends[held])
        self.committed.update(self.offsets)
        self.changed.clear()
        self.outputs.clear()
        self.offsets.clear()

    def moved_past_markers(self) -> dict[tuple[str, int], int]:
        """Positions that moved past what was committed without a record to fold: over the markers that end
        transactions in the sources (their producers', or this engine's own side outputs). Committing them keeps
        the group's lag at 0 once everything is folded."""
        assert self.consumer is not None, "the engine runs"
        moved = {}
        for tp in self.consumer.position(self.consumer.assignment()):
            held = (tp.topic, tp.partition)
            if held not in self.offsets and tp.offset > self.committed.get(held, tp.offset):
                moved[held] = tp.offset
        return moved

    def commit_transaction(self) -> None:
        assert self.producer is not None, "the engine runs"
        for attempt in range(1, COMMIT_TRIES + 1):
            try:
                self.producer.commit_transaction(TIMEOUT)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or attempt == COMMIT_TRIES:
                    raise

    def produce(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int = -1,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue a record of the open transaction; without ``partition`` (-1), the key chooses it (murmur2)."""
        assert self.producer is not None, "the engine runs"
        while True:
            try:
                self.producer.produce(topic, value, key, partition, on_delivery=self.delivered, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.1)

    def delivered(self, error: KafkaError | None, message: Message) -> None:
        """A changelog record's offset is where its partition's store stands once the transaction commits."""
        state = self.by_changelog.get(cast(str, message.topic()))
        if error is not None or state is None:
            return
        key = (state.name, cast(int, message.partition()))
        self.changelog_ends[key] = max(cast(int, message.offset()), self.changelog_ends.get(key, -1))

    def state_named(self, name: str) -> State[Any]:
        return next(state for state in self.states if state.name == name)

    # Rebalances: called by the consumer, in the engine's thread.

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Read the committed offsets (waiting out open transactions on them), restore, then consume from them."""
        committed = consumer.committed(partitions, timeout=TRANSACTION_TIMEOUT_S + TIMEOUT)
        self.committed.update({(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0})
        for tp in partitions:
            for state in self.by_source.get(tp.topic, ()):
                self.restore(state, tp.partition)
        consumer.assign(committed)
        logger.info("state engine: %s restored", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing")
        self.joined.set()

    def restore(self, state: State[Any], partition: int) -> None:
        key = (state.name, partition)
        progress = Restoring(state.changelog, partition, records_left=0)
        with self.lock:
            self.restoring[key] = progress
            self.standbys.release(key)
        store = PartitionStore(self.store_path(state, partition), state.rank)
        try:
            restore(self.kafka, self.group_id, state.changelog, partition, store, self.stopping, progress)
        except BaseException:
            store.close()
            raise
        self.changelog_ends[key] = store.position()
        with self.lock:
            self.stores[key] = store

    def revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit before another worker takes over, then let the partitions go."""
        if self.committing_allowed:
            self.commit()
        self.forget(self.keys_of(partitions))

    def lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Another worker owns these already: what was not committed is its to read again."""
        logger.warning("state engine: %s lost to another worker; what was not committed is dropped",
                       ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        self.forget(self.keys_of(partitions))

    def keys_of(self, partitions: list[TopicPartition]) -> list[tuple[str, int]]:
        return [(state.name, tp.partition) for tp in partitions for state in self.by_source.get(tp.topic, ())]

    def forget(self, keys: list[tuple[str, int]]) -> None:
        with self.lock:
            for key in keys:
                store = self.stores.pop(key, None)
                if store is not None:
                    store.close()
                self.restoring.pop(key, None)
        for name, partition in keys:
            source = (self.state_named(name).source, partition)
            self.changed.pop((name, partition), None)
            self.changelog_ends.pop((name, partition), None)
            self.offsets.pop(source, None)
            self.committed.pop(source, None)
            self.outputs.pop(source, None)


class EngineService(mode.Service):
    """Runs a state engine for as long as the worker runs; subclass it with ``engine`` set and give it to ``app.service``."""

    engine: StateEngine

    async def on_start(self) -> None:
        self.engine.start()

    async def on_stop(self) -> None:
        await self.loop.run_in_executor(None, self.engine.stop)
