"""The Confluent wire format through a real Schema Registry, from producer to worker."""

import random
import time
from collections import Counter

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from streams.codec import build_codec
from streams.demo import demo_signups
from streams.events import UndecodableEvent
from streams.producer import EventProducer
from streams.settings import load_settings
from tests.kafka_reading import read_all

pytestmark = pytest.mark.kafka


def registry_settings(namespace, url: str):
    settings = namespace.settings()
    return load_settings(**settings.model_dump(exclude={"schema_registry"}), schema_registry={"url": url})


def test_events_carry_magic_byte_and_the_registered_schema_id(namespace, schema_registry_url: str) -> None:
    settings = registry_settings(namespace, schema_registry_url)
    with EventProducer(settings) as producer:
        sent = producer.publish_user_created({"id": "r1", "email": "r1@example.com", "username": "reg"})
    [message] = read_all(namespace.bootstrap, settings.topics.user_events, expected=1)
    payload = message.value()
    assert payload[0] == 0
    schema_id = int.from_bytes(payload[1:5], "big")
    registered = SchemaRegistryClient({"url": schema_registry_url}).get_schema(schema_id)
    assert '"streams.users.UserCreated"' in registered.schema_str
    assert build_codec(schema_registry_url).decode(payload) == sent


def test_an_unknown_schema_id_is_undecodable_not_an_exception(schema_registry_url: str) -> None:
    payload = b"\x00" + (987_654).to_bytes(4, "big") + b"\x02x"
    decoded = build_codec(schema_registry_url).decode(payload)
    assert isinstance(decoded, UndecodableEvent) and "schema id 987654" in decoded.reason
    assert isinstance(build_codec(schema_registry_url).decode(b"\xc3\x01" + bytes(8)), UndecodableEvent)


def test_worker_on_the_registry_counts_what_the_producer_sent(namespace, schema_registry_url: str, start_worker) -> None:
    settings = registry_settings(namespace, schema_registry_url)
    events = demo_signups(120, days=2, rng=random.Random(3))
    with EventProducer(settings) as producer:
        for event in events:
            producer.publish(event)
    worker = start_worker(SCHEMA_REGISTRY_URL=schema_registry_url)
    deadline = time.monotonic() + 90
    while worker.get("/signups")["total"] < len(events) and time.monotonic() < deadline:
        time.sleep(0.5)
    expected = Counter(event.envelope.created_day() for event in events)
    assert worker.get("/signups") == {"total": 120, "per_day": dict(sorted(expected.items()))}
