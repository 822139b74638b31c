"""Retries, dead letters, replays and delayed events through the real broker and a real SMTP server.

The SMTP server greylists (answers 451) the recipients a test chooses, which makes the emails
agent fail the way it fails in production, for as many attempts as the test wants.
"""

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Consumer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streams.admin import ensure_topics
from streams.db.engine import sync_engine
from streams.db.models import DeadLetter, EmailLog, ProcessedEvent
from streams.events import DataExport, EmailNotification, PostLiked, UserCreated
from streams.producer import EventProducer
from streams.retry import ATTEMPTS, ORIGIN_TOPIC
from streams.worker_process import WorkerProcess
from tests.conftest import ROOT
from tests.databases import seed_users
from tests.prometheus_reading import samples
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def eventually(check: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout:.0f}s")


def rows(url: str, model: type, *where) -> list:
    engine = sync_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        found = list(session.scalars(select(model).where(*where)))
    engine.dispose()
    return found


def count(url: str, model: type) -> int:
    engine = sync_engine(url)
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(model))
    engine.dispose()
    return total


def waiting_in_tiers(worker: WorkerProcess) -> float:
    """Events in the delay tiers that the relays have not sent on, as the worker's metrics tell."""
    seen = samples(worker.url + "/metrics")
    return sum(value for (name, _), value in seen.items() if name == "streams_relay_pending")


def worker_env(url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    return {"STREAMS_DATABASE__URL": url, "STREAMS_SMTP__PORT": str(smtp_port), **extra}


def test_an_email_refused_twice_is_sent_once_after_about_one_and_then_two_seconds(
    namespace, tmp_path, smtp_server, start_worker
) -> None:
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    seed_users(url, "alice")
    smtp_server.inbox.refuse("alice@example.com", times=2)
    with EventProducer(namespace.settings()) as producer:
        event = producer.publish_email_notification("alice", "newsletter", {"title": "News", "body": "Hello"})
    # Commits far apart: a retry is on time only because routing it asks for an early commit.
    worker = start_worker(**worker_env(url, smtp_server.port, STREAMS_KAFKA__COMMIT_INTERVAL="20"))

    eventually(lambda: smtp_server.inbox.to("alice@example.com"), what="the newsletter")
    time.sleep(3)
    first, second, third = smtp_server.inbox.attempts["alice@example.com"]
    assert 1.0 <= second - first < 2.5
    assert 2.0 <= third - second < 3.5
    assert len(smtp_server.inbox.to("alice@example.com")) == 1
    assert sorted(log.status for log in rows(url, EmailLog)) == ["failed", "failed", "sent"]
    assert [p.event_id for p in rows(url, ProcessedEvent)] == [str(event.id)]
    assert rows(url, DeadLetter) == []
    seen = samples(worker.url + "/metrics")
    assert seen[("streams_relay_lateness_seconds_count", frozenset())] == 2
    assert seen[("streams_retry_lateness_seconds_count", frozenset({("agent", "emails")}))] == 2
    assert eventually(lambda: waiting_in_tiers(worker) == 0, what="nothing left waiting, transaction markers aside")


def test_an_email_that_always_fails_is_a_dead_letter_with_its_headers_and_traceback(
    namespace, database_url, smtp_server, start_worker
) -> None:
    seed_users(database_url, "alice")
    smtp_server.inbox.refuse("alice@example.com")
    with EventProducer(namespace.settings()) as producer:
        event = producer.publish_email_notification("alice", "announcement", {"title": "T", "body": "B"})
    worker = start_worker(**worker_env(database_url, smtp_server.port))

    [letter] = eventually(lambda: rows(database_url, DeadLetter), what="a dead letter")
    assert len(smtp_server.inbox.attempts["alice@example.com"]) == 3
    assert (letter.event_id, letter.event_type, letter.attempts) == (str(event.id), "EmailNotification", 3)
    assert letter.error_type == "SmtpUnavailableError" and "451" in letter.error_message
    assert "SmtpUnavailableError" in letter.traceback and "agents/emails.py" in letter.traceback
    assert (letter.origin_topic, letter.target_agent) == (namespace.settings().topics.email_events, "emails")
    assert letter.headers[ATTEMPTS] == "3" and letter.headers[ORIGIN_TOPIC] == letter.origin_topic
    assert letter.key == b"alice"
    assert smtp_server.inbox.messages == []
    assert f"ALERT dead letter stored id={letter.id} event_id={event.id}" in worker.log_file.read_text()
    stored = frozenset({("origin_topic", letter.origin_topic), ("error_type", "SmtpUnavailableError")})
    assert samples(worker.url + "/metrics")[("streams_dead_letters_stored_total", stored)] == 1


def test_healthy_events_behind_a_failing_one_on_the_same_partition_are_not_held_up(
    namespace, tmp_path, smtp_server, start_worker
) -> None:
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    healthy = [f"user{n}" for n in range(20)]
    seed_users(url, "alice", *healthy)
    smtp_server.inbox.refuse("alice@example.com")
    ensure_topics(namespace.settings().kafka, {namespace.settings().topics.email_events: {}}, partitions=1, replication_factor=1)
    start_worker(**worker_env(url, smtp_server.port, STREAMS_TOPICS__PARTITIONS="1", RETRY_INITIAL_DELAY="60"))
    with EventProducer(namespace.settings()) as producer:
        producer.publish_email_notification("alice", "newsletter", {"title": "first", "body": "stuck"})
        for name in healthy:
            producer.publish_email_notification(name, "newsletter", {"title": "next", "body": "flowing"})

    eventually(lambda: len(smtp_server.inbox.messages) == len(healthy), what="every healthy email")
    assert len(smtp_server.inbox.attempts["alice@example.com"]) == 1, "the failing email waits out its 60 s backoff"
    assert rows(url, DeadLetter) == []


def test_a_signup_whose_welcome_email_is_retried_is_counted_once(namespace, tmp_path, smtp_server, start_worker) -> None:
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    smtp_server.inbox.refuse("dave@example.com", times=2)
    with EventProducer(namespace.settings()) as producer:
        for name in ("dave", "erin", "frank"):
            producer.publish_user_created({"id": name, "email": f"{name}@example.com", "username": name})
    worker = start_worker(**worker_env(url, smtp_server.port))

    eventually(lambda: smtp_server.inbox.to("dave@example.com"), what="dave's welcome email")
    time.sleep(2)
    assert len(smtp_server.inbox.attempts["dave@example.com"]) == 3
    assert len(smtp_server.inbox.messages) == 3
    assert worker.get("/signups")["total"] == 3


def streams_command(namespace, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "dlt", *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, **namespace.env, "STREAMS_DATABASE__URL": url},
    )


def test_a_replayed_dead_letter_is_processed_once_when_the_fault_is_fixed(
    namespace, tmp_path, smtp_server, start_worker
) -> None:
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    seed_users(url, "alice")
    smtp_server.inbox.refuse("alice@example.com")
    with EventProducer(namespace.settings()) as producer:
        event = producer.publish_email_notification("alice", "password_reset", {"token": "T-1"})
    start_worker(**worker_env(url, smtp_server.port, RETRY_MAX_ATTEMPTS="1"))
    [letter] = eventually(lambda: rows(url, DeadLetter), what="a dead letter")

    listed = streams_command(namespace, url, "list", "--type", "EmailNotification", "--error", "451")
    assert listed.returncode == 0 and f"{letter.id:>6}" in listed.stdout and "1 dead letter(s)" in listed.stdout
    dry = streams_command(namespace, url, "replay", str(letter.id), "--dry-run")
    assert dry.returncode == 0 and "1 dead letter(s) to replay" in dry.stdout
    time.sleep(2)
    assert len(smtp_server.inbox.attempts["alice@example.com"]) == 1, "a dry run sends nothing"

    smtp_server.inbox.refuse("alice@example.com", times=0)
    replayed = streams_command(namespace, url, "replay", str(letter.id))
    assert replayed.returncode == 0 and "1 dead letter(s) replayed" in replayed.stdout, replayed.stderr
    [mail] = eventually(lambda: smtp_server.inbox.to("alice@example.com"), what="the replayed email")
    assert "T-1" in mail.get_payload()

    assert streams_command(namespace, url, "replay", "--all").returncode == 0
    time.sleep(3)
    assert len(smtp_server.inbox.to("alice@example.com")) == 1, "a second replay sends nothing more"
    assert [p.event_id for p in rows(url, ProcessedEvent)] == [str(event.id)]
    [replayed_row] = rows(url, DeadLetter)
    assert replayed_row.replay_count == 2 and replayed_row.replayed_at is not None

    purged = streams_command(namespace, url, "purge", str(letter.id))
    assert purged.returncode == 0 and "1 dead letter(s) purged" in purged.stdout
    assert count(url, DeadLetter) == 0


def test_delayed_events_are_never_delivered_early(namespace, tmp_path, smtp_server, start_worker) -> None:
    settings = namespace.settings()
    worker = start_worker(**worker_env(f"sqlite:///{tmp_path / 'streams.db'}", smtp_server.port))
    rng = random.Random(11)
    due: dict[str, float] = {}
    with EventProducer(settings) as producer:
        for n in range(40):
            event = UserCreated.new(user_id=f"later-{n}", email=f"l{n}@example.com", username=f"l{n}", full_name=None)
            if n % 4 == 0:
                when = datetime.now(timezone.utc) + timedelta(seconds=rng.uniform(0.1, 5))
                producer.publish_at(event, when)
                due[event.user_id] = when.timestamp()
            else:
                delay = rng.uniform(0.1, 5)
                due[event.user_id] = time.time() + delay
                producer.publish(event, delay=delay)

    assert eventually(lambda: waiting_in_tiers(worker) > 0, timeout=5, what="delayed events counted as waiting")
    consumer = Consumer({
        "bootstrap.servers": namespace.bootstrap, "group.id": f"{namespace.prefix}-reader",
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
    })
    consumer.subscribe([settings.topics.user_events])
    arrived: dict[str, tuple[float, float]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(arrived) < len(due) and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                arrived[message.key().decode()] = (time.time(), message.timestamp()[1] / 1000)
    finally:
        consumer.close()

    assert set(arrived) == set(due)
    for user_id, (received, written) in arrived.items():
        assert written >= due[user_id] - 0.001 and received >= due[user_id], user_id
    assert eventually(lambda: worker.get("/signups")["total"] == 40, what="40 signups")
    assert eventually(lambda: waiting_in_tiers(worker) == 0, what="no delayed event left waiting")
    assert samples(worker.url + "/metrics")[("streams_relay_lateness_seconds_count", frozenset())] == 40


def test_an_event_of_another_family_is_dead_lettered_at_once_on_each_family_topic(
    namespace, tmp_path, smtp_server, start_worker,
) -> None:
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    names = namespace.settings().topics
    strays = {
        names.user_events: PostLiked.new(post_id="p1", user_id="u1"),
        names.post_events: UserCreated.new(user_id="u2", email="u2@example.com", username="u2"),
        names.email_events: DataExport.new(user_id="u3", format="json"),
        names.export_events: EmailNotification.new(
            user_id="u4", template="announcement", data={"title": "T", "body": "B"},
        ),
    }
    with EventProducer(namespace.settings()) as producer:
        for topic, event in strays.items():
            producer.publish(event, topic=topic)
    worker = start_worker(**worker_env(url, smtp_server.port))

    letters = wait_until(lambda: len(found := rows(url, DeadLetter)) == 4 and found, "four dead letters", alive=worker.alive)
    by_topic = {letter.origin_topic: letter for letter in letters}
    assert set(by_topic) == set(strays)
    for topic, event in strays.items():
        letter = by_topic[topic]
        kind = type(event).__name__
        assert (letter.event_id, letter.event_type, letter.error_type, letter.attempts) == (
            str(event.id), kind, "WrongTopicError", 1,
        )
        assert kind in letter.error_message and topic in letter.error_message
        assert f"dead-lettered event id={event.id} type={kind}" in worker.log_file.read_text()
    seen = samples(worker.url + "/metrics")
    for topic, agent in zip(strays, ("users", "posts", "emails", "exports")):
        labels = frozenset({("topic", topic), ("agent", agent), ("error_type", "WrongTopicError")})
        assert seen[("streams_events_dead_lettered_total", labels)] == 1
        assert seen.get(("streams_events_processed_total", frozenset({("topic", topic), ("agent", agent)})), 0) == 0
    assert worker.alive()
