"""Producer throughput with Avro: EventProducer against a raw confluent-kafka Producer + fastavro.

The raw producer frames each record as EventProducer's codec does (C3 01, fingerprint, schemaless
Avro) and uses the same librdkafka settings, but skips what EventProducer adds: schema validation
and its checks. Each run publishes the same events to a new topic with the same partition count,
times them until every one is acknowledged, and deletes the topic afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from io import BytesIO

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from fastavro import schemaless_writer

from bench.signups_throughput import create_topic
from streams.codec import SINGLE_OBJECT_MAGIC
from streams.events import UserCreated
from streams.kafka_clients import confluent_config
from streams.producer import EventProducer, librdkafka_settings
from streams.schemas import SchemaStore
from streams.settings import Settings, load_settings


def raw_producer(settings: Settings, signups: list[UserCreated]) -> None:
    """confluent-kafka and fastavro by hand: encode, produce with a delivery callback, flush."""
    schema = SchemaStore().by_name(UserCreated.schema)
    header = SINGLE_OBJECT_MAGIC + schema.fingerprint
    topic = settings.topics.user_events
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer(confluent_config(settings.kafka, **librdkafka_settings(settings.kafka)))
    for event in signups:
        out = BytesIO()
        out.write(header)
        schemaless_writer(out, schema.parsed, event.to_avro())
        while True:
            try:
                producer.produce(topic, out.getvalue(), event.key().encode(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60) or failures:
        raise SystemExit(f"the raw producer's events were not all acknowledged: {failures[:1]}")


def event_producer_publish(settings: Settings, signups: list[UserCreated]) -> None:
    """EventProducer.publish, one event at a time; closing flushes and raises on any failure."""
    with EventProducer(settings) as producer:
        for event in signups:
            producer.publish(event)


def event_producer_publish_many(settings: Settings, signups: list[UserCreated]) -> None:
    """EventProducer.publish_many: every event validated and encoded first, then sent in batches."""
    with EventProducer(settings) as producer:
        producer.publish_many(signups, batch_size=1000)


RAW = "raw confluent-kafka + fastavro"
PRODUCERS: dict[str, Callable[[Settings, list[UserCreated]], None]] = {
    RAW: raw_producer,
    "EventProducer.publish": event_producer_publish,
    "EventProducer.publish_many": event_producer_publish_many,
}


def producer_rate(bootstrap: str, name: str, signups: list[UserCreated], partitions: int) -> float:
    """Events per second from the first event handed over to the last acknowledged, on a new topic."""
    topic = f"produce-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions)
    settings = load_settings(kafka={"brokers": bootstrap}, topics={"user_events": topic})
    try:
        started = time.perf_counter()
        PRODUCERS[name](settings, signups)
        return len(signups) / (time.perf_counter() - started)
    finally:
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        admin.delete_topics([topic])[topic].result(30)
