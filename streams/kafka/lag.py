"""Consumer groups as the broker sees them: their lag per topic and the topics their members hold.

Lag is measured at the broker, for a whole group: for every partition, the last offset a
read_committed consumer can reach minus the offset the group committed (or the start of the
log, when it committed none). So any worker gives the same answer, and a worker that is stuck
shows up as lag even though it cannot report on itself.

A group's committed offsets are read through a consumer handle of that group
(``Consumer.committed``), never through ``AdminClient.list_consumer_group_offsets``. When an
OffsetFetch answer says the coordinator is not (or not yet) there, librdkafka asks the client's
consumer-group handle to look it up again, and an admin client has none: the process dies with
a NULL dereference in ``rd_kafka_cgrp_op`` (confluentinc/librdkafka#5040). A broker answers so
while a group's coordinator is loading or moving, as on every fresh broker. A consumer handle
has the group handle the lookup needs. It never subscribes, so it never joins the group.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import TypeVar

from confluent_kafka import ConsumerGroupState, Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from streams.kafka_clients import confluent_config
from streams.settings import KafkaSettings

TIMEOUT = 10.0
T = TypeVar("T")
#: How long past its own timeout an admin request is waited for.
ANSWER_GRACE = 2.0
#: How long a metadata request may take before the broker counts as away.
PROBE_TIMEOUT = 1.0


class GroupReader:
    """Reads consumer groups' committed offsets, lag and assignments; one per process, safe across threads."""

    def __init__(self, kafka: KafkaSettings, timeout: float = TIMEOUT) -> None:
        self.kafka = kafka
        self.timeout = timeout
        self.admin = AdminClient(confluent_config(kafka, log_level=0))
        self._offset_readers: dict[str, tuple[Consumer, threading.Lock]] = {}
        self._lock = threading.Lock()
        self._stuck: list[AdminClient] = []

    def _offset_reader(self, group: str) -> tuple[Consumer, threading.Lock]:
        with self._lock:
            if group not in self._offset_readers:
                consumer = Consumer(confluent_config(
                    self.kafka, log_level=0, **{
                        "group.id": group,
                        "enable.auto.commit": False,
                        # Committed offsets as they stand, without waiting for a member's open transaction.
                        "isolation.level": "read_uncommitted",
                    },
                ))
                self._offset_readers[group] = (consumer, threading.Lock())
            return self._offset_readers[group]

    def committed(self, group: str, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        """The offsets ``group`` committed for ``partitions``; a partition it never committed is left out."""
        consumer, lock = self._offset_reader(group)
        with lock:
            answered = consumer.committed(partitions, timeout=self.timeout)
        return {(tp.topic, tp.partition): tp.offset for tp in answered if tp.offset >= 0}

    def answer(self, future: Future[T], client: AdminClient | None = None) -> T:
        """The answer of an admin request made through ``client`` (the shared admin client when None), or a
        KafkaException once it is overdue. Some requests of librdkafka's admin client never complete after the
        broker went away mid-request (their futures are never resolved), so an overdue one leaves its client
        behind; the shared one is replaced. The client is kept, not destroyed, since destroying a client with a
        request stuck in it can block."""
        try:
            return future.result(timeout=self.timeout + ANSWER_GRACE)
        except FutureTimeout:
            with self._lock:
                if client is None:
                    client, self.admin = self.admin, AdminClient(confluent_config(self.kafka, log_level=0))
                self._stuck.append(client)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "the broker's answer is overdue")) from None

    def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        """Every partition of those ``topics`` that exist."""
        metadata = self.admin.list_topics(timeout=self.timeout)
        return [
            TopicPartition(topic, partition)
            for topic in topics if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        ]

    def lag(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        """Events not yet processed by ``group``, per existing topic."""
        partitions = self.partitions(topics)
        if not partitions:
            return {}
        ends = self.admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in partitions}, isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=self.timeout,
        )
        starts = self.admin.list_offsets({tp: OffsetSpec.earliest() for tp in partitions}, request_timeout=self.timeout)
        position = self.committed(group, partitions)
        lag: dict[str, int] = {}
        for tp in partitions:
            end = self.answer(ends[tp]).offset
            start = self.answer(starts[tp]).offset
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - position.get((tp.topic, tp.partition), start))
        return lag

    def assignments(self, group: str) -> dict[str, list[tuple[str, int]]] | None:
        """Each member's client id and the (topic, partition)s it holds; None unless the group is stable.

        librdkafka's admin client can abort the process when a coordinator request it times out meets
        its late answer (an assertion on the request's reference count), and can leave such requests
        unanswered for good once a broker went away mid-request. So the group is described only after
        the broker has just answered a metadata request (``PROBE_TIMEOUT``), by an admin client made for
        this one request.
        """
        self.admin.list_topics(timeout=PROBE_TIMEOUT)
        describer = AdminClient(confluent_config(self.kafka, log_level=0))
        description = self.answer(describer.describe_consumer_groups([group], request_timeout=self.timeout)[group], describer)
        if description.state != ConsumerGroupState.STABLE:
            return None
        held: dict[str, list[tuple[str, int]]] = {}
        for member in description.members:
            held.setdefault(member.client_id, []).extend((tp.topic, tp.partition) for tp in member.assignment.topic_partitions)
        return held

    def assigned_topics(self, group: str) -> set[str] | None:
        """The topics some member of ``group`` holds partitions of; None unless the group is stable."""
        held = self.assignments(group)
        return None if held is None else {topic for partitions in held.values() for topic, _ in partitions}

    def close(self) -> None:
        with self._lock:
            readers, self._offset_readers = self._offset_readers, {}
        for consumer, lock in readers.values():
            with lock:
                consumer.close()
