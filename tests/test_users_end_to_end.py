"""The users agent through the real broker, on SQLite and PostgreSQL: side effects exactly once."""

import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streams.db.engine import sync_engine
from streams.db.models import Notification, ProcessedEvent, User, UserProfile
from streams.producer import EventProducer
from tests.databases import seed_users

pytestmark = pytest.mark.kafka


def seed_followed_user(url: str) -> None:
    """alice, followed by bob and carol."""
    seed_users(url, "alice", "bob", "carol", followers={"alice": ("bob", "carol")})
    engine = sync_engine(url)
    with Session(engine) as session, session.begin():
        session.add(UserProfile(user_id="alice", bio="old bio"))
    engine.dispose()


def wait_for_processed(url: str, count: int, worker, timeout: float = 90.0) -> None:
    engine = sync_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert worker.alive(), f"worker died; see {worker.log_file}"
            with Session(engine) as session:
                if session.scalar(select(func.count()).select_from(ProcessedEvent)) >= count:
                    return
            time.sleep(0.3)
        raise AssertionError(f"fewer than {count} events processed in {timeout}s; see {worker.log_file}")
    finally:
        engine.dispose()


def test_each_side_effect_happens_once_even_when_events_are_delivered_twice(
    namespace, database_url: str, start_worker
) -> None:
    seed_followed_user(database_url)
    with EventProducer(namespace.settings()) as producer:
        signup = producer.publish_user_created({"id": "dave", "email": "dave@example.com", "username": "dave"})
        producer.publish(signup)
        update = producer.publish_user_updated({"id": "alice", "bio": "I post about streams", "full_name": "Alice A."})
        producer.publish(update)
        missing = producer.publish_user_updated({"id": "ghost", "bio": "boo"})
    worker = start_worker(STREAMS_DATABASE__URL=database_url)
    wait_for_processed(database_url, 2, worker)
    time.sleep(2)

    engine = sync_engine(database_url)
    with Session(engine) as session:
        dave_profiles = session.scalars(select(UserProfile).where(UserProfile.user_id == "dave")).all()
        assert [profile.bio for profile in dave_profiles] == ["Welcome to our platform!"]
        assert session.get(User, "dave").email == "dave@example.com"
        alice = session.get(User, "alice")
        assert (alice.full_name, session.get(UserProfile, "alice").bio) == ("Alice A.", "I post about streams")
        notified = session.execute(select(Notification.user_id, Notification.action, Notification.subject_id)).all()
        assert sorted(notified) == [("bob", "profile_updated", "alice"), ("carol", "profile_updated", "alice")]
        processed = session.execute(select(ProcessedEvent.event_id, ProcessedEvent.handler)).all()
        assert sorted(processed) == sorted([(str(signup.id), "users.create_user"), (str(update.id), "users.update_user")])
        assert session.get(User, "ghost") is None
    engine.dispose()
    assert worker.alive()
    assert f"retrying event id={missing.id} type=UserUpdated agent=users in 1.00s (attempt 1 failed): EntityNotFoundError" in (
        worker.log_file.read_text()
    )
