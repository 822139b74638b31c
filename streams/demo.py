"""The main job, end to end on one machine: a local broker, a worker, demo signups and the web view."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from streams.devkafka import LocalBroker
from streams.events import POST_ACTIVITIES, Envelope, Event, PostCreated, UserCreated, UserFollowed
from streams.producer import EventProducer
from streams.settings import load_settings
from streams.worker_process import WorkerProcess


def demo_signups(count: int, days: int, rng: random.Random) -> list[UserCreated]:
    """Signups spread over the last ``days`` UTC days."""
    now = datetime.now(timezone.utc)
    events = []
    for _ in range(count):
        user_id = uuid.uuid4().hex[:12]
        created_at = now - timedelta(days=rng.randrange(days), minutes=rng.randrange(60))
        envelope = Envelope(uuid.uuid4(), "UserCreated", created_at, 0, {"source": "streams-demo"})
        events.append(UserCreated(envelope, user_id, f"{user_id}@example.com", f"user_{user_id}"))
    return events


def demo_activity(user_ids: list[str], posts: int, rng: random.Random) -> list[Event]:
    """Follows among the users, ``posts`` posts by them and views, likes, comments and shares of those."""
    events: list[Event] = []
    for follower in user_ids:
        for followed in rng.sample(user_ids, min(3, len(user_ids))):
            events.append(UserFollowed.new(user_id=follower, followed_id=followed))
    for n in range(posts):
        post_id, author = f"post-{uuid.uuid4().hex[:8]}", rng.choice(user_ids)
        events.append(PostCreated.new(post_id=post_id, author_id=author, content=f"demo post {n} #streams #demo"))
        views = rng.randrange(5, 200)
        for activity, share in (("viewed", 1.0), ("liked", rng.uniform(0, 0.5)), ("commented", rng.uniform(0, 0.2)),
                                ("shared", rng.uniform(0, 0.1))):
            for _ in range(round(views * share)):
                extra: dict[str, Any] = {"comment_id": uuid.uuid4().hex[:8]} if activity == "commented" else {}
                events.append(POST_ACTIVITIES[activity].new(post_id=post_id, user_id=rng.choice(user_ids), **extra))
    return events


def settled_total(worker: WorkerProcess, quiet: float = 2.0, timeout: float = 60.0) -> int:
    """The signup total once it has stopped moving, i.e. the worker has caught up with older events."""
    deadline = time.monotonic() + timeout
    total = worker.get("/signups")["total"]
    while time.monotonic() < deadline:
        time.sleep(quiet)
        latest = worker.get("/signups")["total"]
        if latest == total:
            break
        total = latest
    return total


def wait_for_total(worker: WorkerProcess, expected: int, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    signups = worker.get("/signups")
    while signups["total"] < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        signups = worker.get("/signups")
    return signups


def wait_for_top_posts(worker: WorkerProcess, limit: int, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    posts = worker.get(f"/posts/top?limit={limit}")["posts"]
    while len(posts) < limit and time.monotonic() < deadline:
        time.sleep(0.5)
        posts = worker.get(f"/posts/top?limit={limit}")["posts"]
    return posts


def run_demo(
    home: Path,
    port: int,
    users: int,
    days: int,
    controller_port: int | None = None,
    web_port: int = 6066,
    wait: bool = True,
    posts: int = 50,
) -> int:
    broker = LocalBroker(home / "kafka", port=port, controller_port=controller_port)
    broker_was_running = broker.running_pid() is not None
    print(f"kafka: starting a local broker (jars and data under {home})...")
    bootstrap = broker.start()
    print(f"kafka: ready at {bootstrap}")
    env = {
        "STREAMS_KAFKA__BROKERS": bootstrap,
        "STREAMS_STATE__DATA_DIR": str(home / "worker"),
        "STREAMS_DATABASE__URL": f"sqlite:///{home.resolve() / 'streams.db'}",
    }
    worker = WorkerProcess(env, home / "worker.log", web_port)
    try:
        print("worker: starting faust -A streams.app worker ...")
        worker.start()
        before = settled_total(worker)
        settings = load_settings(kafka={"brokers": bootstrap})
        rng = random.Random()
        signups_published = demo_signups(users, days, rng)
        activity = demo_activity([event.user_id for event in signups_published[:100]], posts, rng)
        with EventProducer(settings) as producer:
            producer.publish_many(signups_published, batch_size=1000)
            producer.publish_many(activity, batch_size=1000)
        print(f"producer: published {users} UserCreated events to {settings.topics.user_events}")
        print(f"producer: published {len(activity)} follow, post and post activity events")
        signups = wait_for_total(worker, before + users)
        print("signups table:")
        print(json.dumps(signups, indent=2))
        print("top posts by engagement rate:")
        for post in wait_for_top_posts(worker, limit=5):
            print(f"  {post['post_id']}  views {post['views']:4}  rate {post['engagement_rate']:6.2f}%")
        print(f"web view: {worker.url}/ (live page)  {worker.url}/signups  {worker.url}/posts/top  {worker.url}/health")
        print(f"worker log: {worker.log_file}   broker log: {broker.log_file}")
        if wait:
            print("Ctrl-C stops the worker and the broker.")
            while worker.alive():
                time.sleep(1)
        return 0 if signups["total"] >= before + users else 1
    finally:
        worker.stop()
        if not broker_was_running:
            broker.stop()
