"""Stream state end to end: engagement and user statistics, their web view, recovery and several workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from streams.admin import ensure_topics
from streams.producer import EventProducer
from streams.settings import KafkaSettings
from streams.kafka.lag import GroupReader
from streams.kafka.partitions import partition_of
from streams.topics import state_group_id

pytestmark = pytest.mark.kafka

USERS = ("ann", "bob", "cat")


def status_and_body(worker, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(worker.url + path, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(check: Callable[[], bool], workers, timeout: float = 120.0, what: str = "the expected state") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.alive(), f"worker died; see {worker.log_file}"
        try:
            if check():
                return
        except (urllib.error.URLError, ConnectionError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; see {[str(w.log_file) for w in workers]}")


def publish_social_activity(producer: EventProducer) -> None:
    """Three users, follows, three posts and their activity; EXPECTED below is what it adds up to."""
    for user in USERS:
        producer.publish_user_created({"id": user, "email": f"{user}@example.com", "username": user})
    producer.publish_follow("bob", "ann")
    producer.publish_follow("cat", "ann")
    producer.publish_follow("ann", "bob")
    producer.publish_follow("bob", "ann")  # again: changes nothing
    producer.publish_unfollow("cat", "ann")
    producer.publish_unfollow("cat", "bob")  # never followed: changes nothing
    producer.publish_follow("ann", "ann")  # oneself: changes nothing
    producer.publish_post_activity("liked", "p3", "cat")  # before p3 is known
    producer.publish_post_created({"id": "p1", "author_id": "ann", "content": "hello #streams"})
    producer.publish_post_created({"id": "p2", "author_id": "bob", "content": "second"})
    producer.publish_post_created({"id": "p3", "author_id": "ann", "content": "third"})
    for n in range(10):
        producer.publish_post_activity("viewed", "p1", USERS[n % 3])
    for activity, times in (("liked", 3), ("commented", 2), ("shared", 1)):
        for n in range(times):
            producer.publish_post_activity(activity, "p1", USERS[n % 3], comment_id=f"c{n}")
    for n in range(4):
        producer.publish_post_activity("viewed", "p2", USERS[n % 3])
        producer.publish_post_activity("liked", "p2", USERS[n % 3])


EXPECTED_POSTS = {
    "p1": {"post_id": "p1", "author_id": "ann", "views": 10, "likes": 3, "comments": 2, "shares": 1, "engagement_rate": 60.0},
    "p2": {"post_id": "p2", "author_id": "bob", "views": 4, "likes": 4, "comments": 0, "shares": 0, "engagement_rate": 100.0},
    "p3": {"post_id": "p3", "author_id": "ann", "views": 0, "likes": 1, "comments": 0, "shares": 0, "engagement_rate": 0.0},
}
EXPECTED_USERS = {
    "ann": {"user_id": "ann", "posts_count": 2, "followers": 1, "following": 1, "likes_received": 4},
    "bob": {"user_id": "bob", "posts_count": 1, "followers": 1, "following": 1, "likes_received": 4},
}


def snapshot(worker) -> dict:
    """Everything the web view says about the published activity."""
    return {
        "signups": worker.get("/signups"),
        "posts": {post: worker.get(f"/posts/{post}/engagement") for post in EXPECTED_POSTS},
        "users": {user: worker.get(f"/users/{user}/stats") for user in EXPECTED_USERS},
        "top": worker.get("/posts/top?limit=5")["posts"],
    }


def settled(worker) -> bool:
    state = snapshot(worker)
    return state["posts"] == EXPECTED_POSTS and state["users"] == EXPECTED_USERS and state["signups"]["total"] == 3


def test_engagement_and_user_statistics_are_exact(namespace, start_worker) -> None:
    with EventProducer(namespace.settings()) as producer:
        publish_social_activity(producer)
    worker = start_worker()

    wait_until(lambda: settled(worker), [worker], what="exact engagement and user statistics")
    state = snapshot(worker)
    assert state["top"] == [EXPECTED_POSTS["p2"], EXPECTED_POSTS["p1"]], "p3 has no views, so no rate"
    assert worker.get("/posts/top?limit=1&min_views=0")["posts"] == [EXPECTED_POSTS["p2"]]
    wait_until(lambda: all(caught_up(worker, name) for name in STATES), [worker], what="nothing left to fold")
    assert snapshot(worker) == state, "events were counted twice"


def test_signups_answer_for_a_date_range(namespace, start_worker) -> None:
    with EventProducer(namespace.settings()) as producer:
        for user in USERS:
            producer.publish_user_created({"id": user, "email": f"{user}@example.com", "username": user})
    worker = start_worker()
    wait_until(lambda: worker.get("/signups")["total"] == 3, [worker])
    (today,) = worker.get("/signups")["per_day"]

    assert worker.get(f"/signups?from={today}&to={today}") == {
        "total": 3, "per_day": {today: 3}, "from": today, "to": today, "in_range": 3,
    }
    assert worker.get("/signups?to=2000-01-01") == {"total": 3, "per_day": {}, "from": None, "to": "2000-01-01", "in_range": 0}


def test_bad_parameters_answer_400_and_unknown_keys_404(namespace, start_worker) -> None:
    worker = start_worker()
    for path in (
        "/signups?from=yesterday", "/signups?from=2026-02-30", "/signups?from=2026-03-02&to=2026-03-01",
        "/posts/top?limit=0", "/posts/top?limit=many", "/posts/top?min_views=-1",
        "/posts/%20bad%20id/engagement", "/users/..%2F..%2Fetc/stats",
    ):
        status, body = status_and_body(worker, path)
        assert status == 400, path
        assert body["error"], path
    wait_until(lambda: status_and_body(worker, "/users/nobody/stats")[0] != 503, [worker], what="partitions assigned")
    for path in ("/posts/no-such-post/engagement", "/users/nobody/stats"):
        status, body = status_and_body(worker, path)
        assert status == 404, path
        assert "no" in body["error"], path


def restored(worker) -> bool:
    """The worker holds every partition of every state, each restored from its changelog."""
    states = status_and_body(worker, "/health")[1].get("states", {})
    return bool(states) and all(state["partitions"] == [0, 1, 2, 3] for state in states.values())


STATES = ("signup-partials", "post-engagement", "follows", "user-stats")


def caught_up(worker, state: str) -> bool:
    """The state engine's group has folded every event of ``state``'s source."""
    health = status_and_body(worker, "/health")[1].get("states", {}).get(state, {})
    return health.get("state") == "running" and health.get("lag") == 0


def test_the_same_state_is_rebuilt_after_the_local_store_is_deleted(namespace, start_worker, tmp_path) -> None:
    with EventProducer(namespace.settings()) as producer:
        publish_social_activity(producer)
    worker = start_worker()
    wait_until(lambda: settled(worker), [worker])
    before = snapshot(worker)
    assert worker.stop() == 0

    store = tmp_path / "worker0"
    assert any(store.rglob("*.sst")) or any(store.rglob("CURRENT")), "the states were not stored in RocksDB"
    shutil.rmtree(store)
    rebuilt = start_worker(STREAMS_STATE__DATA_DIR=str(store))
    wait_until(lambda: restored(rebuilt), [rebuilt])
    wait_until(lambda: snapshot(rebuilt) == before, [rebuilt], what="the state from before the store was deleted")


def test_counts_stay_exact_when_a_worker_is_killed_mid_stream(namespace, start_worker, tmp_path) -> None:
    posts, views_each = 40, 12_500
    with EventProducer(namespace.settings()) as producer:
        for n in range(views_each):
            for post in range(posts):
                producer.publish_post_activity("viewed", f"post{post}", f"u{n}")
    worker = start_worker(STREAMS_STATE__BATCH_SIZE="50")
    wait_until(lambda: status_and_body(worker, "/posts/post0/engagement")[0] == 200, [worker], what="the first views")
    os.killpg(worker.process.pid, signal.SIGKILL)  # the worker and its state engine process, as a container dies
    worker.process.wait()
    settings = namespace.settings()
    reader = GroupReader(settings.kafka)
    committed = reader.committed(state_group_id(settings.kafka.group_id), reader.partitions([settings.topics.post_events]))
    reader.close()
    assert sum(committed.values()) < posts * views_each, "the worker was to be killed before it had counted every view"

    restarted = start_worker(STREAMS_STATE__DATA_DIR=str(tmp_path / "worker0"), STREAMS_STATE__BATCH_SIZE="50")
    wait_until(
        lambda: all(restarted.get(f"/posts/post{post}/engagement")["views"] >= views_each for post in range(posts)),
        [restarted], what="every view counted",
    )
    wait_until(lambda: caught_up(restarted, "post-engagement"), [restarted], what="nothing left to fold")
    views = {post: restarted.get(f"/posts/post{post}/engagement")["views"] for post in range(posts)}
    assert views == {post: views_each for post in range(posts)}


def test_two_workers_each_answer_for_every_key(namespace, start_worker) -> None:
    """The second worker joins while the first is counting, so table partitions (with state) move to it."""
    spread = {f"q{n}": n + 1 for n in range(20)}

    def publish_views() -> None:
        with EventProducer(namespace.settings()) as producer:
            for post, views in spread.items():
                for n in range(views):
                    producer.publish_post_activity("viewed", post, USERS[n % 3])

    first = start_worker()
    with EventProducer(namespace.settings()) as producer:
        publish_social_activity(producer)
    publish_views()
    wait_until(lambda: first.get("/posts/q19/engagement")["views"] == spread["q19"], [first], what="the first views")
    second = start_worker()
    workers = [first, second]
    publish_views()
    spread = {post: 2 * views for post, views in spread.items()}

    def every_worker_answers_for_every_key() -> bool:
        held = [status_and_body(worker, "/health")[1]["states"]["post-engagement"]["partitions"] for worker in workers]
        return all(held) and sorted(held[0] + held[1]) == [0, 1, 2, 3] and all(
            settled(worker) and all(worker.get(f"/posts/{post}/engagement")["views"] == views for post, views in spread.items())
            for worker in workers
        )

    wait_until(every_worker_answers_for_every_key, workers, what="both workers to answer exactly for every key")
    assert snapshot(first) == snapshot(second)
    held = [
        {post["post_id"] for post in json.loads(worker.text("/posts/top?scope=local&min_views=0&limit=100"))["part"]}
        for worker in workers
    ]
    assert held[0] and held[1], "both workers hold some of the posts"
    assert not held[0] & held[1], "no post is held by both"
    assert held[0] | held[1] == set(EXPECTED_POSTS) | set(spread)
    assert first.get("/posts/top?limit=100&min_views=0") == second.get("/posts/top?limit=100&min_views=0")


def test_keys_are_looked_up_in_the_partition_producers_put_them_in(namespace, kafka_bootstrap) -> None:
    topic = namespace.settings().topics.post_events
    ensure_topics(KafkaSettings(brokers=kafka_bootstrap), {topic: {}}, 4, 1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    placed: dict[str, int] = {}
    for n in range(200):
        key = f"post-{n}"
        producer.produce(topic, b"x", key.encode(), on_delivery=lambda err, msg: placed.__setitem__(msg.key().decode(), msg.partition()))
    assert producer.flush(30) == 0
    assert placed == {key: partition_of(key, 4) for key in placed} and len(placed) == 200


def test_a_clean_stop_right_after_the_last_event_loses_no_change(namespace, start_worker, tmp_path) -> None:
    posts = 300
    with EventProducer(namespace.settings()) as producer:
        for n in range(posts):
            producer.publish_post_activity("viewed", f"post{n}", "u")
    worker = start_worker()
    wait_until(
        lambda: all(status_and_body(worker, f"/posts/post{n}/engagement")[0] == 200 for n in range(posts)),
        [worker], what="every post counted",
    )
    assert worker.stop() == 0
    shutil.rmtree(tmp_path / "worker0")

    rebuilt = start_worker(STREAMS_STATE__DATA_DIR=str(tmp_path / "worker0"))
    wait_until(lambda: restored(rebuilt), [rebuilt])
    missing = [n for n in range(posts) if status_and_body(rebuilt, f"/posts/post{n}/engagement")[0] != 200]
    assert missing == [], "changes committed with their offsets must be in the changelog"
