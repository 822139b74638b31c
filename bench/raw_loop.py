"""The raw loop every throughput benchmark measures the worker against: a confluent-kafka consumer doing the
same per-event work in plain Python, without a changelog, a store or a transaction: the ceiling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Message


def timed_consume(bootstrap: str, topic: str, events: int, handle: Callable[[Message], None]) -> float:
    """Batches of 1,000 from ``topic``'s start through ``handle``, offsets committed asynchronously after each;
    events per second from the first batch until ``events`` were handled."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < events:
        batch = consumer.consume(1000, timeout=1.0)
        if started is None and batch:
            started = time.perf_counter()
        for message in batch:
            handle(message)
        seen += len(batch)
        if batch:
            consumer.commit(asynchronous=True)
    assert started is not None
    elapsed = time.perf_counter() - started
    consumer.close()
    return events / elapsed
