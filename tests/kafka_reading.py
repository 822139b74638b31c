"""Reading topics back from the real broker, to assert what was (and was not) sent."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[Message]:
    """Every message in ``topic`` from the start, stopping once ``expected`` arrived or the topic is drained."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    try:
        idle_polls = 0
        while len(messages) < expected and idle_polls < timeout:
            batch = consumer.consume(500, timeout=1.0)
            idle_polls = 0 if batch else idle_polls + 1
            messages.extend(message for message in batch if message.error() is None)
    finally:
        consumer.close()
    return messages


def end_offsets(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0) -> int:
    """Sum of the high watermarks: how many records the topic holds (retried while leaders are elected)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watermarks-{uuid.uuid4().hex}"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in range(partitions))
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
