"""The signup-counting worker, end to end: producer -> real broker -> faust worker -> RocksDB table -> web view."""

import random
import time
from collections import Counter

import pytest
from confluent_kafka import Producer

from streams.demo import demo_signups
from streams.producer import EventProducer

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


def test_undecodable_bytes_are_reported_with_their_offset_and_do_not_stop_the_worker(namespace, start_worker) -> None:
    settings = namespace.settings()
    raw = Producer({"bootstrap.servers": namespace.bootstrap})
    raw.produce(settings.topics.user_events, b"definitely not avro", b"bad-1", partition=0)
    raw.produce(settings.topics.user_events, b"\xc3\x01" + bytes(8) + b"junk", b"bad-2", partition=0)
    assert raw.flush(10) == 0
    with EventProducer(settings) as producer:
        for n in range(30):
            producer.publish_user_created({"id": f"ok-{n}", "email": f"{n}@example.com", "username": f"ok{n}"})
    worker = start_worker()

    assert wait_for(worker, "/signups", lambda body: body["total"] >= 30)["total"] == 30
    assert worker.alive()
    log = worker.log_file.read_text()
    topic = settings.topics.user_events
    assert f"skipping undecodable event topic={topic} partition=0 offset=0 bytes=19" in log
    assert f"topic={topic} partition=0 offset=1" in log and "no schema with fingerprint 0000000000000000" in log
