"""The signup folding lane through the real broker: restarts, a lost store, a group that reads
everything again, and lanes that join and leave while events arrive. Counts must stay exact."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from streams.admin import ensure_topics
from streams.demo import demo_signups
from streams.events import UserCreated
from streams.folding_lane import FoldingLane
from streams.producer import EventProducer
from streams.settings import KafkaSettings, Settings
from streams.topics import SIGNUP_PARTIALS, changelog_topic_name
from streams.kafka.lag import GroupReader
from tables.signups import DayCount, fold_signups, sum_partials

TIMEOUT = 90.0


def per_day(events: list[UserCreated]) -> dict[str, int]:
    return dict(sorted(Counter(event.envelope.created_day() for event in events).items()))


def publish(settings: Settings, events: list[UserCreated]) -> None:
    with EventProducer(settings) as producer:
        for event in events:
            producer.publish(event)


@pytest.fixture
def lanes(namespace, tmp_path: Path) -> Iterator[Callable[..., FoldingLane[DayCount]]]:
    """Signup lanes of this test's namespace, each with its own store; all stopped afterwards."""
    started: list[FoldingLane[DayCount]] = []
    settings = namespace.settings()

    def lane(store: str, kafka: KafkaSettings = settings.kafka) -> FoldingLane[DayCount]:
        made = FoldingLane(
            SIGNUP_PARTIALS, kafka, settings.topics.user_events,
            changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS), tmp_path / store,
            fold_signups, DayCount.dumps, DayCount.loads, 200, 0.2, 4, 1,
        )
        made.start()
        started.append(made)
        return made

    yield lane
    for made in started:
        made.stop()


def counted(*lanes: FoldingLane[DayCount]) -> dict[str, int]:
    return sum_partials(item for lane in lanes for item in lane.items())


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_lane_counts_each_signup_once_across_a_restart_a_lost_store_and_a_full_reread(namespace, lanes) -> None:
    settings = namespace.settings()
    first, second = demo_signups(3000, days=5, rng=random.Random(3)), demo_signups(2000, days=5, rng=random.Random(4))
    publish(settings, first)
    lane = lanes("store-a")
    wait_until(lambda: sum(counted(lane).values()) >= 3000, "the first 3,000 signups")
    lane.stop()

    publish(settings, second)
    lane = lanes("store-a")
    wait_until(lambda: sum(counted(lane).values()) >= 5000, "5,000 signups after a restart on the same store")
    assert counted(lane) == per_day(first + second)
    lane.stop()

    again = settings.kafka.model_copy(update={"group_id": f"{settings.kafka.group_id}-again"})
    rereader = lanes("store-b", again)
    reader = GroupReader(settings.kafka)
    source = settings.topics.user_events

    def reread() -> bool:
        return rereader.partitions() == [0, 1, 2, 3] and reader.lag(rereader.group_id, [source]).get(source) == 0

    wait_until(reread, "a new group on an empty store to read every event again")
    assert counted(rereader) == per_day(first + second), "events read again were counted again"

    latest = read_changelog(namespace.bootstrap, changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS))
    assert sum_partials((key, DayCount.loads(value)) for key, (value, _) in latest.items()) == per_day(first + second)
    assert all(key.endswith(f"/{partition}") for key, (_, partition) in latest.items()), "a key in another partition"


def read_changelog(bootstrap: str, topic: str) -> dict[str, tuple[bytes, int]]:
    """The last value and partition of each key of a changelog topic, read to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "changelog-reader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True})
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


def test_lanes_joining_and_leaving_mid_stream_keep_the_counts_exact(namespace, lanes) -> None:
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
    first = lanes("store-a")
    publisher.start()
    wait_until(lambda: sent >= 1500, "a quarter of the events")
    second = lanes("store-b")
    wait_until(lambda: sent >= 3000 and second.partitions(), "half the events and the second lane holding partitions")
    first.stop()
    third = lanes("store-c")
    publisher.join(TIMEOUT)
    def settled() -> bool:
        return sum(counted(second, third).values()) >= 6000 and len(second.partitions() + third.partitions()) == 4

    wait_until(settled, "every signup counted by the two lanes left")
    assert sorted(second.partitions() + third.partitions()) == [0, 1, 2, 3]
    assert counted(second, third) == per_day(events)


def test_a_store_ahead_of_its_changelog_made_again_is_discarded_not_added_to(namespace, lanes) -> None:
    settings = namespace.settings()
    source, changelog = settings.topics.user_events, changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS)
    publish(settings, demo_signups(1000, days=3, rng=random.Random(6)))
    lane = lanes("store-a")
    wait_until(lambda: sum(counted(lane).values()) >= 1000, "the first 1,000 signups")
    lane.stop()

    admin = AdminClient({"bootstrap.servers": namespace.bootstrap})
    for future in admin.delete_topics([source, changelog]).values():
        future.result(30)
    wait_until(lambda: not {source, changelog} & set(admin.list_topics(timeout=10).topics), "both topics deleted")
    ensure_topics(settings.kafka, {source: {}}, 4, 1)
    events = demo_signups(400, days=2, rng=random.Random(7))
    publish(settings, events)
    again = settings.kafka.model_copy(update={"group_id": f"{settings.kafka.group_id}-again"})
    rereader = lanes("store-a", again)
    reader = GroupReader(settings.kafka)

    def reread() -> bool:
        return rereader.partitions() == [0, 1, 2, 3] and reader.lag(rereader.group_id, [source]).get(source) == 0

    wait_until(reread, "a new group to read the new topic into the old store")
    assert counted(rereader) == per_day(events), "the old store's counts were kept"
