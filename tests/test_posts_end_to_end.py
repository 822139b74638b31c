"""The posts agent through the real broker, on SQLite and PostgreSQL."""

import asyncio
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streams.db.engine import async_engine, session_factory, sync_engine
from streams.db.models import Notification, Post, PostTag, ProcessedEvent, Tag, User
from streams.events import PostCreated
from streams.producer import EventProducer
from streams.services.search import search
from streams.worker_process import WorkerProcess
from tests.databases import seed_users

pytestmark = pytest.mark.kafka


def wait_for_processed(session: Session, worker: WorkerProcess, count: int) -> None:
    """Until ``count`` handler runs have committed (or 90 s have passed)."""
    deadline = time.monotonic() + 90
    while session.scalar(select(func.count()).select_from(ProcessedEvent)) < count and time.monotonic() < deadline:
        assert worker.alive(), worker.log_file
        time.sleep(0.3)


def search_posts(url: str, query: str) -> list[str]:
    async def run() -> list[str]:
        engine = async_engine(url)
        try:
            async with session_factory(engine)() as session:
                return [hit.entity_id for hit in await search(session, query, kind="post")]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_new_post_is_stored_tagged_counted_searchable_and_announced_once(
    namespace, database_url: str, start_worker
) -> None:
    seed_users(database_url, "alice", "bob", "carol", followers={"alice": ("bob", "carol")})
    with EventProducer(namespace.settings()) as producer:
        tagged = producer.publish_post_created(
            {"id": "p1", "author_id": "alice", "content": "Loving #Kafka and #faust! #kafka again, #Streams"}
        )
        producer.publish(tagged)
        producer.publish_post_activity("liked", "p1", "bob")
        orphan = producer.publish_post_created({"id": "p0", "author_id": "ghost", "content": "boo"})
        producer.publish_many(
            [PostCreated.new(post_id=f"p{n}", author_id="alice", content=f"Post number {n} about gardening") for n in (2, 3, 4)],
            batch_size=2,
        )
    worker = start_worker(STREAMS_DATABASE__URL=database_url)
    engine = sync_engine(database_url)
    with Session(engine) as session:
        wait_for_processed(session, worker, 4)
        time.sleep(2)
        assert sorted(session.scalars(select(Post.id))) == ["p1", "p2", "p3", "p4"]
        assert session.get(User, "alice").posts_count == 4
        assert sorted(session.scalars(select(Tag.name))) == ["faust", "kafka", "streams"]
        assert session.scalar(select(func.count()).select_from(PostTag).where(PostTag.post_id == "p1")) == 3
        notified = session.execute(select(Notification.user_id, Notification.subject_id).where(Notification.action == "new_post")).all()
        assert sorted(notified) == sorted((user, post) for user in ("bob", "carol") for post in ("p1", "p2", "p3", "p4"))
    engine.dispose()
    assert search_posts(database_url, "faust") == ["p1"]
    assert sorted(search_posts(database_url, "gardening")) == ["p2", "p3", "p4"]
    assert (
        f"retrying event id={orphan.id} type=PostCreated agent=posts in 1.00s (attempt 1 failed): "
        f"EntityNotFoundError: PostCreated {orphan.id}: no author 'ghost'"
    ) in worker.log_file.read_text()


def test_posts_handled_side_by_side_count_every_post_and_share_new_tags(namespace, database_url: str, start_worker) -> None:
    """Sixty posts by one author, several in flight at once, each bringing tags the others bring too."""
    seed_users(database_url, "alice")
    posts = [
        PostCreated.new(post_id=f"p{n}", author_id="alice", content=f"#garden{n % 5} #shared{n % 3} note {n}")
        for n in range(60)
    ]
    with EventProducer(namespace.settings()) as producer:
        producer.publish_many(posts, batch_size=60)
    worker = start_worker(STREAMS_DATABASE__URL=database_url, STREAMS_TOPICS__IN_FLIGHT='{"post": 16}')
    engine = sync_engine(database_url)
    with Session(engine) as session:
        wait_for_processed(session, worker, 60)
        assert session.scalar(select(func.count()).select_from(Post)) == 60
        assert session.get(User, "alice").posts_count == 60
        assert sorted(session.scalars(select(Tag.name))) == sorted([f"garden{n}" for n in range(5)] + [f"shared{n}" for n in range(3)])
        assert session.scalar(select(func.count()).select_from(PostTag)) == 120
    engine.dispose()
    assert "retrying" not in worker.log_file.read_text()
