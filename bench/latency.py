"""End-to-end latency of the signup count through the streams worker at a paced rate of signups.

An event is done when the consumer group of the worker's state engine has committed an offset past
it on its partition: the event is decoded, folded, its day's count is in the changelog, and the
offset is committed in the same transaction (one every STREAMS_STATE__BATCH_WINDOW).
Its latency is the time the committed offset was first seen past it minus the event's timestamp,
which the producer set when it produced it. The group's committed offsets are sampled every 10 ms.
"""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from bench.retries import percentile
from bench.signups_throughput import signup_events
from bench.workers import bench_worker
from streams.admin import ensure_topics
from streams.producer import EventProducer
from streams.topics import state_group_id
from tests.conftest import Namespace

DEFINITION = ("latency = time the state engine's committed offset was first seen past the event "
              "(sampled every 10 ms) - the event's producer timestamp")
WARM_UP_EVENTS = 200


class CommitWatch(threading.Thread):
    """Samples a consumer group's committed offsets in a thread of its own, with the wall-clock time of each."""

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int, every: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        self.partitions = [TopicPartition(topic, partition) for partition in range(partitions)]
        self.every = every
        self.times_ms: list[list[float]] = [[] for _ in self.partitions]
        self.offsets: list[list[int]] = [[] for _ in self.partitions]
        self.stopping = threading.Event()
        self.closed_ms = 0.0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                committed = self.consumer.committed(self.partitions, timeout=10)
            except KafkaException:  # the group's coordinator is still being elected or has moved
                self.stopping.wait(self.every)
                continue
            now_ms = time.time() * 1000
            for tp in committed:
                offsets = self.offsets[tp.partition]
                if tp.offset > (offsets[-1] if offsets else -1):
                    offsets.append(tp.offset)
                    self.times_ms[tp.partition].append(now_ms)
            self.stopping.wait(self.every)

    def latest(self, partition: int) -> int:
        offsets = self.offsets[partition]
        return offsets[-1] if offsets else -1

    def done_at_ms(self, partition: int, offset: int) -> float | None:
        """When the committed offset was first seen past ``offset``; None if it has not been."""
        index = bisect.bisect_right(self.offsets[partition], offset)
        times = self.times_ms[partition]
        return times[index] if index < len(times) else None

    def wait_past(self, ends: dict[int, int], timeout: float) -> bool:
        """Whether the committed offsets reached ``ends`` (partition: offset) within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.latest(partition) >= end for partition, end in ends.items()):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.stopping.set()
        self.join(30)
        self.consumer.close()
        self.closed_ms = time.time() * 1000


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """The offset the next event of each partition will get."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()


def produced(bootstrap: str, topic: str, starts: dict[int, int], ends: dict[int, int]) -> list[tuple[int, int, int]]:
    """(partition, offset, timestamp ms) of the events published between ``starts`` and ``ends``.

    Events the relay sent back for another attempt (they carry retry headers) are left out.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
    found: list[tuple[int, int, int]] = []
    pending = {p for p in starts if starts[p] < ends[p]}
    deadline = time.monotonic() + 120
    try:
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is None and message.offset() < ends[message.partition()] and not message.headers():
                    found.append((message.partition(), message.offset(), message.timestamp()[1]))
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
    finally:
        consumer.close()
    if pending:
        raise SystemExit(f"could not read back the published events of {topic} partitions {sorted(pending)}")
    return found


def paced_run(
    bootstrap: str, home: Path, rate: float, seconds: float, drain: float, partitions: int
) -> dict[str, object]:
    """One worker, warmed up with a few events, then ``rate`` signups/s for ``seconds``; latencies of those.

    An event still not done when the watch ends counts as done then, so with any such event the
    percentiles are lower bounds.
    """
    namespace = Namespace(f"lat{uuid.uuid4().hex[:8]}", bootstrap)
    settings = namespace.settings()
    topic, group = settings.topics.user_events, state_group_id(settings.kafka.group_id)
    ensure_topics(settings.kafka, {topic: {}}, partitions, 1)
    worker = bench_worker({**namespace.env, "STREAMS_TOPICS__PARTITIONS": str(partitions)}, home, namespace.prefix)
    watch = CommitWatch(bootstrap, group, topic, partitions)
    with EventProducer(settings) as producer:
        encoded = [producer.encode(event) for event in signup_events(WARM_UP_EVENTS + round(rate * seconds))]
        warm_up, paced = encoded[:WARM_UP_EVENTS], encoded[WARM_UP_EVENTS:]
        watch.start()
        try:
            worker.start()
            producer.send_encoded(warm_up)
            producer.flush()
            starts = end_offsets(bootstrap, topic, partitions)
            if not watch.wait_past(starts, 300):
                raise SystemExit(f"the worker did not handle {WARM_UP_EVENTS} warm-up events within 300s; "
                                 f"see {worker.log_file}")
            started, sent = time.monotonic(), 0
            while sent < len(paced):
                due = min(len(paced), int((time.monotonic() - started) * rate) + 1)
                if due > sent:
                    producer.send_encoded(paced[sent:due])
                    sent = due
                else:
                    time.sleep(max(0.0, started + sent / rate - time.monotonic()))
            producer.flush()
            offered = len(paced) / (time.monotonic() - started)
            ends = end_offsets(bootstrap, topic, partitions)
            watch.wait_past(ends, drain)
        finally:
            watch.close()
            worker.stop()
    events = produced(bootstrap, topic, starts, ends)
    done_ms = [watch.done_at_ms(p, offset) for p, offset, _ in events]
    latencies = [(finished if finished is not None else watch.closed_ms) - timestamp
                 for finished, (_, _, timestamp) in zip(done_ms, events)]
    return {"offered_per_s": offered, "events": len(events), "not_done": done_ms.count(None),
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)}
