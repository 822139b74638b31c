"""Fuzzed input: random bytes, and junk shaped like the service's own framings, sent to every topic
the worker reads. The worker never stops, every record it cannot read is a dead letter kept
whole, and good events sent in between are all counted."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from streams.codec import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, build_codec
from streams.db.engine import sync_engine
from streams.db.models import DeadLetter
from streams.errors import StreamsError
from streams.events import PostViewed, UndecodableEvent, UserCreated
from streams.producer import EventProducer
from streams.schemas import SchemaStore
from streams.topics import tier_topic_name
from streams.worker_process import WorkerProcess
from tables.user_stats import UserStatsChange
from tests.reliability.workload import views_of

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(600)]

EXAMPLES = 300
GOOD_POST = "fuzz-good"
CODEC = build_codec(None)
FINGERPRINTS = [SchemaStore().by_name(name).fingerprint for name in SchemaStore().names()]
A_REAL_EVENT = CODEC.encode(UserCreated.new(user_id="u1", email="u1@example.com", username="user1"))


def garbled(payload: bytes) -> st.SearchStrategy[bytes]:
    """A real event cut short, or with bytes overwritten: the header is right, the body is not."""
    cut = st.integers(min_value=10, max_value=len(payload) - 1).map(lambda n: payload[:n])
    overwritten = st.tuples(st.integers(10, len(payload) - 1), st.binary(min_size=1, max_size=8)).map(
        lambda spot: payload[:spot[0]] + spot[1] + payload[spot[0] + len(spot[1]):]
    )
    return cut | overwritten


JUNK = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda fp, body: SINGLE_OBJECT_MAGIC + fp + body, st.sampled_from(FINGERPRINTS), st.binary(max_size=120)),
    st.builds(lambda fp: SINGLE_OBJECT_MAGIC + fp, st.binary(min_size=8, max_size=8)),
    st.builds(lambda sid, body: CONFLUENT_MAGIC + sid + body, st.binary(min_size=4, max_size=4), st.binary(max_size=80)),
    garbled(A_REAL_EVENT),
    st.builds(lambda text: text.encode(), st.text(max_size=80)),
    st.sampled_from([b"{}", b'{"source": 1, "steps": 2}', b'{"source": "s", "steps": [["x"]]}', b"null", b"[]"]),
)
KEYS = st.none() | st.binary(max_size=24)


def readable(topic: str, key: bytes | None, payload: bytes, names: dict[str, str]) -> bool:
    """Whether the worker can read this record as what its topic carries (and may act on it)."""
    if topic == names["user_stats_changes"]:
        try:
            UserStatsChange.read(key, payload)
        except StreamsError:
            return False
        return True
    if topic in (names["dead_letters"], *names["tiers"]):
        return False
    return not isinstance(CODEC.decode(payload), UndecodableEvent)


def dead_letter_payloads(database: str) -> Counter[bytes]:
    engine = sync_engine(database)
    try:
        with Session(engine) as session:
            return Counter(session.scalars(select(DeadLetter.payload)))
    finally:
        engine.dispose()


def good_views(worker: WorkerProcess) -> int:
    """Views of the good post so far; 0 while the worker is busy recovering and answers 503."""
    try:
        return views_of(worker, GOOD_POST)
    except OSError:
        return 0


def test_fuzzed_records_on_every_topic_are_dead_letters_and_good_events_keep_flowing(
    namespace, start_worker, smtp_server, tmp_path, report,
) -> None:
    database = f"sqlite:///{tmp_path / 'fuzz.db'}"
    worker = start_worker(
        STREAMS_DATABASE__URL=database, STREAMS_SMTP__PORT=str(smtp_server.port),
        STREAMS_EXPORTS__DIRECTORY=str(tmp_path / "exports"),
    )
    topic_settings = namespace.settings().topics
    names = {
        "user_stats_changes": topic_settings.user_stats_changes, "dead_letters": topic_settings.dead_letters,
        "tiers": [tier_topic_name(topic_settings.retry_prefix, delay) for delay in (0.25, 1.0)],
    }
    topics = [
        topic_settings.user_events, topic_settings.post_events, topic_settings.email_events,
        topic_settings.export_events, names["user_stats_changes"], names["dead_letters"], *names["tiers"],
    ]
    unreadable: Counter[bytes] = Counter()
    sent = Counter()

    with EventProducer(namespace.settings()) as producer:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(topic=st.sampled_from(topics), key=KEYS, payload=JUNK)
        def send(topic: str, key: bytes | None, payload: bytes) -> None:
            producer.send_raw(topic, key, payload)
            producer.publish(PostViewed.new(post_id=GOOD_POST, user_id="fuzzer"))
            sent["junk"] += 1
            sent["good"] += 1
            if not readable(topic, key, payload, names):
                unreadable[payload] += 1
            assert worker.alive(), f"the worker stopped; see {worker.log_file}"

        send()
        producer.flush()

    deadline = time.monotonic() + 240
    views, stored = 0, Counter()
    while time.monotonic() < deadline:
        assert worker.alive(), f"the worker stopped; see {worker.log_file}"
        views = good_views(worker)
        stored = dead_letter_payloads(database)
        if views >= sent["good"] and not unreadable - stored:
            break
        time.sleep(1.0)
    missing = unreadable - stored
    report({
        "junk_sent": sent["junk"], "unreadable": sum(unreadable.values()), "dead_letters": sum(stored.values()),
        "unreadable_not_dead_lettered": sum(missing.values()), "good_sent": sent["good"], "good_counted": views,
    })
    assert worker.alive(), f"the worker stopped; see {worker.log_file}"
    assert not missing, f"{sum(missing.values())} unreadable records are not dead letters, e.g. {next(iter(missing))!r}"
    assert views == sent["good"]
