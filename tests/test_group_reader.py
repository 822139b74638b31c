"""Consumer groups read at the real broker: lag from committed offsets, and the topics no member holds."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.admin import ensure_topics
from streams.kafka.lag import GroupReader
from tables.health import topic_states
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def test_lag_counts_from_the_committed_offset_and_a_topic_no_member_holds_is_unassigned(namespace) -> None:
    settings = namespace.settings()
    held, orphan, group = f"{namespace.prefix}-held", f"{namespace.prefix}-orphan", f"{namespace.prefix}-members"
    ensure_topics(settings.kafka, {held: {}, orphan: {}}, partitions=4, replication_factor=1)
    producer = Producer({"bootstrap.servers": namespace.bootstrap})
    for n in range(10):
        producer.produce(held, f"event {n}".encode(), partition=0)
    for n in range(3):
        producer.produce(orphan, f"event {n}".encode(), partition=1)
    assert producer.flush(10) == 0

    member = Consumer({"bootstrap.servers": namespace.bootstrap, "group.id": group, "enable.auto.commit": False})
    member.subscribe([held])
    wait_until(lambda: member.poll(0.2) is None and len(member.assignment()) == 4, "the member holding all of held")
    member.commit(offsets=[TopicPartition(held, 0, 4)], asynchronous=False)
    reader = GroupReader(settings.kafka)
    try:
        assert reader.committed(group, reader.partitions([held])) == {(held, 0): 4}
        states = wait_until(lambda: reader.assigned_topics(group) and topic_states(reader, group, [held, orphan], 5),
                            "the group stable")
        assert states == {
            held: {"lag": 6, "assigned": True, "status": "lagging"},
            orphan: {"lag": 3, "assigned": False, "status": "unassigned"},
        }
        assert topic_states(reader, group, [held], 7)[held]["status"] == "healthy"
    finally:
        reader.close()
        member.close()
