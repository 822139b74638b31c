"""One event of each type through the real broker, and every side effect it has: the database,
the SMTP server's inbox and the exports folder. Runs on SQLite and on PostgreSQL."""

import csv
import io
import json
import time

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streams.db.engine import sync_engine
from streams.db.models import DataExport, EmailLog, Notification, Post, PostTag, ProcessedEvent, Tag, User, UserProfile
from streams.producer import EventProducer
from tests.databases import seed_users

pytestmark = pytest.mark.kafka


def processed(url: str, handler: str) -> int:
    engine = sync_engine(url)
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.handler == handler))
    engine.dispose()
    return count


def wait_until(condition, worker, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.alive(), f"worker died; see {worker.log_file}"
        assert time.monotonic() < deadline, f"timed out; see {worker.log_file}"
        time.sleep(0.3)


def test_every_event_type_has_all_its_side_effects(namespace, database_url: str, smtp_server, tmp_path, start_worker) -> None:
    seed_users(database_url, "bob", "carol", followers={"bob": ("carol",)})
    exports = tmp_path / "exports"
    worker = start_worker(
        STREAMS_DATABASE__URL=database_url,
        STREAMS_SMTP__PORT=str(smtp_server.port),
        STREAMS_EXPORTS__DIRECTORY=str(exports),
    )
    with EventProducer(namespace.settings()) as producer:
        producer.publish_user_created({"id": "alice", "email": "alice@example.com", "username": "alice", "full_name": "Alice"})
        producer.publish_user_updated({"id": "bob", "bio": "Gardener and #kafka fan"})
        producer.publish_post_created({"id": "p1", "author_id": "bob", "content": "Tomatoes! #Garden #summer #garden"})
        producer.publish_post_created({"id": "p2", "author_id": "bob", "content": "Second harvest #garden"})
        producer.publish_post_activity("liked", "p1", "carol")
        producer.publish_email_notification("bob", "password_reset", {"token": "R3SET"})
    wait_until(lambda: processed(database_url, "posts.create_post") == 2, worker)

    with EventProducer(namespace.settings()) as producer:
        as_json = producer.publish_data_export("bob", "json")
        producer.publish(as_json)
        as_csv = producer.publish_data_export("bob", "csv", {"posts_limit": 1})
        as_pdf = producer.publish_data_export({"id": "bob"}, "pdf")
        bad_format = producer.publish_data_export("bob", "xlsx")
    wait_until(lambda: processed(database_url, "exports.export_user_data") == 3, worker)
    smtp_server.inbox.wait_for(2)
    time.sleep(2)

    engine = sync_engine(database_url)
    with Session(engine) as session:
        assert session.get(UserProfile, "alice").bio == "Welcome to our platform!"
        assert session.get(UserProfile, "bob").bio == "Gardener and #kafka fan"
        assert session.get(User, "bob").posts_count == 2
        assert sorted(session.scalars(select(Tag.name))) == ["garden", "summer"]
        assert session.scalar(select(func.count()).select_from(PostTag)) == 3
        assert sorted(session.scalars(select(Post.id))) == ["p1", "p2"]
        notifications = session.execute(select(Notification.user_id, Notification.action, Notification.subject_id)).all()
        export_files = sorted(session.scalars(select(DataExport.path)))
        assert sorted((user, action) for user, action, _ in notifications) == sorted(
            [("carol", "profile_updated"), ("carol", "new_post"), ("carol", "new_post")] + [("bob", "data_export_complete")] * 3
        )
        assert sorted(session.execute(select(EmailLog.recipient, EmailLog.template, EmailLog.status)).all()) == [
            ("alice@example.com", "welcome", "sent"), ("bob@example.com", "password_reset", "sent"),
        ]
    engine.dispose()

    assert sorted(m["To"] for m in smtp_server.inbox.messages) == ["alice@example.com", "bob@example.com"]
    [reset] = smtp_server.inbox.to("bob@example.com")
    assert "R3SET" in reset.get_payload()

    assert sorted(p.name for p in exports.iterdir()) == sorted(
        f"export-{event.id.hex}.{event.format}" for event in (as_json, as_csv, as_pdf)
    )
    assert export_files == sorted(str(p) for p in exports.iterdir())
    document = json.loads((exports / f"export-{as_json.id.hex}.json").read_text())
    assert document["user"]["bio"] == "Gardener and #kafka fan"
    assert sorted(post["id"] for post in document["posts"]) == ["p1", "p2"]
    rows = list(csv.DictReader(io.StringIO((exports / f"export-{as_csv.id.hex}.csv").read_text())))
    assert len(rows) == 1 and rows[0]["user_id"] == "bob"
    pdf_text = PdfReader(exports / f"export-{as_pdf.id.hex}.pdf").pages[0].extract_text()
    assert "Data export for bob" in pdf_text and "Posts (2)" in pdf_text
    log = worker.log_file.read_text()
    assert f"dead-lettered event id={bad_format.id} type=DataExport topic=" in log
    assert "agent=exports after 1 attempt(s): UnknownFormatError: unknown export format 'xlsx'" in log
