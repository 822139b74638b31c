"""The signup-counting worker, end to end: producer -> real broker -> faust worker -> RocksDB table -> web view."""

import random
import time
from collections import Counter

import pytest
from confluent_kafka import Producer

from streams.demo import demo_signups
from streams.producer import EventProducer
from streams.retry import ERROR_TYPE, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC, read_headers
from tests.kafka_reading import read_all

pytestmark = pytest.mark.kafka


def wait_for(worker, path: str, done, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    body = worker.get(path)
    while not done(body) and time.monotonic() < deadline:
        assert worker.alive(), f"worker died; see {worker.log_file}"
        time.sleep(0.5)
        body = worker.get(path)
    return body


def test_signups_are_counted_exactly_in_total_and_per_utc_day(namespace, start_worker) -> None:
    events = demo_signups(600, days=5, rng=random.Random(7))
    expected = Counter(event.envelope.created_day() for event in events)
    with EventProducer(namespace.settings()) as producer:
        for event in events:
            producer.publish(event)
    worker = start_worker()

    signups = wait_for(worker, "/signups", lambda body: body["total"] >= len(events))
    assert signups == {"total": 600, "per_day": dict(sorted(expected.items()))}
    time.sleep(3)
    assert worker.get("/signups")["total"] == 600, "events were counted twice"


def test_events_published_while_the_worker_runs_are_counted(namespace, start_worker) -> None:
    worker = start_worker()
    with EventProducer(namespace.settings()) as producer:
        for n in range(50):
            producer.publish_user_created({"id": f"late-{n}", "email": f"{n}@example.com", "username": f"late{n}"})
        producer.publish_user_updated({"id": "late-1", "bio": "updates are not signups"})
    signups = wait_for(worker, "/signups", lambda body: body["total"] >= 50)
    assert signups["total"] == 50


def test_undecodable_bytes_land_in_the_dead_letter_topic_whole_and_do_not_stop_the_worker(namespace, start_worker) -> None:
    settings = namespace.settings()
    bad = [b"definitely not avro", b"\xc3\x01" + bytes(8) + b"junk"]
    raw = Producer({"bootstrap.servers": namespace.bootstrap})
    for n, payload in enumerate(bad):
        raw.produce(settings.topics.user_events, payload, f"bad-{n}".encode(), partition=0)
    assert raw.flush(10) == 0
    with EventProducer(settings) as producer:
        for n in range(30):
            producer.publish_user_created({"id": f"ok-{n}", "email": f"{n}@example.com", "username": f"ok{n}"})
    worker = start_worker()

    assert wait_for(worker, "/signups", lambda body: body["total"] >= 30)["total"] == 30
    letters = sorted(read_all(namespace.bootstrap, settings.topics.dead_letters, expected=2), key=lambda m: m.key())
    assert [(m.key(), m.value()) for m in letters] == [(b"bad-0", bad[0]), (b"bad-1", bad[1])]
    for offset, letter in enumerate(letters):
        headers = read_headers(letter.headers())
        assert headers[ORIGIN_TOPIC] == settings.topics.user_events
        assert (headers[ORIGIN_PARTITION], headers[ORIGIN_OFFSET]) == ("0", str(offset))
        assert headers[ERROR_TYPE] == "UndecodableEventError"
    assert worker.alive()
    log = worker.log_file.read_text()
    topic = settings.topics.user_events
    assert f"dead-lettered undecodable event bytes=19 topic={topic} partition=0 offset=0" in log
    assert "no schema with fingerprint 0000000000000000" in log
    assert worker.get("/signups")["total"] == 30
