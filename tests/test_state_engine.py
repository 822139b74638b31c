"""The state engine counting signups through the real broker: restarts, a lost store, a group that reads
everything again, engines that join and leave while events arrive, and a stalled engine whose
partitions moved on. Counts must stay exact, in the stores and in the changelog."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from streams.admin import ensure_topics
from streams.demo import demo_signups
from streams.events import UserCreated
from streams.kafka.lag import GroupReader
from streams.producer import EventProducer
from streams.settings import Settings
from streams.state.engine import State, StateEngine
from streams.topics import SIGNUP_PARTIALS, changelog_topic_name, state_group_id
from tables.signups import DayCount, fold_signups, sum_partials
from tests.conftest import ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka

TIMEOUT = 90.0


def per_day(events: list[UserCreated]) -> dict[str, int]:
    return dict(sorted(Counter(event.envelope.created_day() for event in events).items()))


def publish(settings: Settings, events: list[UserCreated]) -> None:
    with EventProducer(settings) as producer:
        for event in events:
            producer.publish(event)


def signup_state(settings: Settings) -> State[DayCount]:
    return State(
        SIGNUP_PARTIALS, settings.topics.user_events, changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS),
        fold_signups, DayCount.dumps, DayCount.loads,
    )


def signup_engine(
    settings: Settings, store: Path, group_id: str | None = None, commit_interval: float = 0.2,
    session_timeout: float = 10.0, address: str = "127.0.0.1:1", standby_replicas: int = 0,
) -> StateEngine:
    """An engine of ``settings``' app counting signups into its changelog, its stores under ``store``; in the
    consumer group of ``group_id``'s engines when given. ``address`` stands for its worker's web view."""
    return StateEngine(
        settings.kafka, state_group_id(group_id or settings.kafka.group_id), [signup_state(settings)], store, 200,
        commit_interval, session_timeout, 4, 1, settings.topics.dead_letters, address, standby_replicas,
    )


@pytest.fixture
def engines(namespace, tmp_path: Path) -> Iterator[Callable[..., StateEngine]]:
    """Signup engines of this test's namespace, each with its own stores; all stopped afterwards."""
    started: list[StateEngine] = []

    def engine(store: str, group_id: str | None = None, **options: Any) -> StateEngine:
        made = signup_engine(namespace.settings(), tmp_path / store, group_id, **options)
        made.start()
        started.append(made)
        return made

    yield engine
    for made in started:
        made.stop()


def counted(*engines: StateEngine) -> dict[str, int]:
    return sum_partials(item for engine in engines for item in engine.items(engine.states[0]))


def partitions(*engines: StateEngine) -> list[int]:
    return sorted(partition for engine in engines for partition in engine.partitions(engine.states[0]))


def test_an_engine_counts_each_signup_once_across_a_restart_a_lost_store_and_a_full_reread(namespace, engines) -> None:
    settings = namespace.settings()
    first, second = demo_signups(3000, days=5, rng=random.Random(3)), demo_signups(2000, days=5, rng=random.Random(4))
    publish(settings, first)
    engine = engines("store-a")
    wait_until(lambda: sum(counted(engine).values()) >= 3000, "the first 3,000 signups", TIMEOUT)
    engine.stop()

    publish(settings, second)
    engine = engines("store-a")
    wait_until(lambda: sum(counted(engine).values()) >= 5000, "5,000 signups after a restart on the same store", TIMEOUT)
    assert counted(engine) == per_day(first + second)
    engine.stop()

    rereader = engines("store-b", f"{settings.kafka.group_id}-again")
    reader = GroupReader(settings.kafka)
    source = settings.topics.user_events

    def reread() -> bool:
        return partitions(rereader) == [0, 1, 2, 3] and reader.lag(rereader.group_id, [source]).get(source) == 0

    wait_until(reread, "a new group on an empty store to read every event again", TIMEOUT)
    assert counted(rereader) == per_day(first + second), "events read again were counted again"

    assert changelog_counts(namespace.bootstrap, changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS)) == per_day(first + second)


def changelog_counts(bootstrap: str, topic: str) -> dict[str, int]:
    """Signups per day as the committed changelog holds them; every key in its own partition."""
    latest = read_changelog(bootstrap, topic)
    assert all(key.endswith(f"/{partition}") for key, (_, partition) in latest.items()), "a key in another partition"
    return sum_partials((key, DayCount.loads(value)) for key, (value, _) in latest.items())


def read_changelog(bootstrap: str, topic: str) -> dict[str, tuple[bytes, int]]:
    """The last value and partition of each key of a changelog topic, read to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "changelog-reader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True,
                         "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    latest: dict[str, tuple[bytes, int]] = {}
    ended: set[int] = set()
    deadline = time.monotonic() + TIMEOUT
    while len(ended) < 4 and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if message.error() is not None:
                ended.add(message.partition())
                continue
            latest[message.key().decode()] = (message.value(), message.partition())
    consumer.close()
    assert len(ended) == 4, "the changelog was not read to its end"
    return latest


def test_engines_joining_and_leaving_mid_stream_keep_the_counts_exact(namespace, engines) -> None:
    settings = namespace.settings()
    events = demo_signups(6000, days=7, rng=random.Random(5))
    sent = 0

    def send() -> None:
        nonlocal sent
        with EventProducer(settings) as producer:
            for sent, event in enumerate(events, 1):
                producer.publish(event)
                if sent % 100 == 0:
                    producer.flush()
                    time.sleep(0.02)

    publisher = threading.Thread(target=send)
    first = engines("store-a")
    publisher.start()
    wait_until(lambda: sent >= 1500, "a quarter of the events", TIMEOUT)
    second = engines("store-b")
    wait_until(lambda: sent >= 3000 and partitions(second), "half the events and the second engine holding partitions",
               TIMEOUT)
    first.stop()
    third = engines("store-c")
    publisher.join(TIMEOUT)

    def settled() -> bool:
        return sum(counted(second, third).values()) >= 6000 and partitions(second, third) == [0, 1, 2, 3]

    wait_until(settled, "every signup counted by the two engines left", TIMEOUT)
    assert counted(second, third) == per_day(events)
    assert first.restarts == second.restarts == third.restarts == 0


def test_a_store_ahead_of_its_changelog_made_again_is_discarded_not_added_to(namespace, engines) -> None:
    settings = namespace.settings()
    source, changelog = settings.topics.user_events, changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS)
    publish(settings, demo_signups(1000, days=3, rng=random.Random(6)))
    engine = engines("store-a")
    wait_until(lambda: sum(counted(engine).values()) >= 1000, "the first 1,000 signups", TIMEOUT)
    engine.stop()

    admin = AdminClient({"bootstrap.servers": namespace.bootstrap})
    for future in admin.delete_topics([source, changelog]).values():
        future.result(30)
    wait_until(lambda: not {source, changelog} & set(admin.list_topics(timeout=10).topics), "both topics deleted",
               TIMEOUT)
    ensure_topics(settings.kafka, {source: {}}, 4, 1)
    events = demo_signups(400, days=2, rng=random.Random(7))
    publish(settings, events)
    rereader = engines("store-a", f"{settings.kafka.group_id}-again")
    reader = GroupReader(settings.kafka)

    def reread() -> bool:
        return partitions(rereader) == [0, 1, 2, 3] and reader.lag(rereader.group_id, [source]).get(source) == 0

    wait_until(reread, "a new group to read the new topic into the old store", TIMEOUT)
    assert counted(rereader) == per_day(events), "the old store's counts were kept"


def test_a_stalled_engine_whose_partitions_moved_on_commits_nothing_and_the_counts_stay_exact(
    namespace, engines, tmp_path: Path,
) -> None:
    """The stalled engine runs in a process of its own, stopped with SIGSTOP past its session and resumed with
    SIGCONT once another engine has taken its partitions over and counted more events."""
    settings = namespace.settings()
    events = demo_signups(8000, days=5, rng=random.Random(8))
    before, during, after = events[:3000], events[3000:5500], events[5500:]
    source, group = settings.topics.user_events, state_group_id(settings.kafka.group_id)
    changelog = changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS)
    reader = GroupReader(settings.kafka)
    publish(settings, before)
    log = tmp_path / "stalled.log"
    with log.open("wb") as output:
        stalled = subprocess.Popen(
            [sys.executable, "-m", "tests.state_engine_process", namespace.bootstrap, settings.kafka.group_id, source,
             str(tmp_path / "store-stalled"), "2.0", "6"],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: reader.lag(group, [source]).get(source) == 0, "the first events counted", TIMEOUT,
                   alive=lambda: stalled.poll() is None)
        publish(settings, during)
        os.kill(stalled.pid, signal.SIGSTOP)
        survivor = engines("store-survivor", session_timeout=6)
        wait_until(lambda: partitions(survivor) == [0, 1, 2, 3], "the survivor holding every partition", TIMEOUT)
        publish(settings, after)
        wait_until(lambda: sum(counted(survivor).values()) == len(events), "every signup counted by the survivor", TIMEOUT)
        os.kill(stalled.pid, signal.SIGCONT)
        wait_until(lambda: b"lost to another worker" in log.read_bytes() or b"transaction refused" in log.read_bytes(),
                   "the resumed engine finding its partitions gone", TIMEOUT)
    finally:
        os.kill(stalled.pid, signal.SIGCONT)
        stalled.terminate()
        stalled.wait(60)
    wait_until(lambda: partitions(survivor) == [0, 1, 2, 3] and reader.lag(group, [source]).get(source) == 0,
               "the survivor holding every partition again, nothing left to count", TIMEOUT)
    assert counted(survivor) == per_day(events)
    assert changelog_counts(namespace.bootstrap, changelog) == per_day(events)
    assert survivor.restarts == 0, "the survivor started over"
    survivor.stop()

    restored = engines("store-empty")
    wait_until(lambda: partitions(restored) == [0, 1, 2, 3], "an engine on an empty store holding every partition",
               TIMEOUT)
    assert counted(restored) == per_day(events), "the changelog restores other counts"


def test_a_standby_copy_makes_taking_a_partition_over_read_only_the_changelog_tail(namespace, engines) -> None:
    settings = namespace.settings()
    events = demo_signups(6000, days=5, rng=random.Random(9))
    publish(settings, events[:4000])
    first = engines("store-a", address="127.0.0.1:1", standby_replicas=1)
    second = engines("store-b", address="127.0.0.1:2", standby_replicas=1)
    state = first.states[0]

    def copies_kept() -> bool:
        held, copied = partitions(first), first.standbys.partitions(state.name)
        return (sum(counted(first, second).values()) == 4000 and partitions(first, second) == [0, 1, 2, 3]
                and bool(held) and copied == sorted(set(range(4)) - set(held))
                and second.standbys.partitions(state.name) == held)

    wait_until(copies_kept, "each engine holding two partitions and a copy of the other two", TIMEOUT)
    publish(settings, events[4000:])
    wait_until(lambda: sum(counted(first, second).values()) == len(events), "every signup counted", TIMEOUT)
    taken = partitions(first)
    first.stop()
    wait_until(lambda: partitions(second) == [0, 1, 2, 3], "the second engine holding every partition", TIMEOUT)
    assert counted(second) == per_day(events)
    restored = {progress.partition: progress.restored for progress in second.restores(state)}
    assert all(restored[partition] <= 10 for partition in taken), f"partitions taken over read {restored}"
