"""Emails through the real broker to a real SMTP server, on SQLite and PostgreSQL."""

import re
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from streams.db.engine import sync_engine
from streams.db.models import EmailLog, ProcessedEvent
from streams.producer import EventProducer
from tests.conftest import free_port
from tests.databases import seed_users

pytestmark = pytest.mark.kafka


def email_log(url: str) -> list[tuple[str, str, str]]:
    engine = sync_engine(url)
    with Session(engine) as session:
        rows = session.execute(select(EmailLog.recipient, EmailLog.template, EmailLog.status)).all()
    engine.dispose()
    return sorted(tuple(row) for row in rows)


def test_templated_emails_arrive_once_and_bad_requests_are_skipped(
    namespace, database_url: str, smtp_server, start_worker
) -> None:
    seed_users(database_url, "alice")
    with EventProducer(namespace.settings()) as producer:
        reset = producer.publish_email_notification("alice", "password_reset", {"token": "T0K3N-42"})
        producer.publish(reset)
        producer.publish_email_notification({"id": "alice"}, "newsletter", {"title": "November news", "body": "Streams!"})
        unknown = producer.publish_email_notification("alice", "birthday")
        no_token = producer.publish_email_notification("alice", "password_reset")
        ghost = producer.publish_email_notification("ghost", "announcement", {"title": "t", "body": "b"})
        producer.publish_user_created({"id": "dave", "email": "dave@example.com", "username": "dave"})
    worker = start_worker(
        STREAMS_DATABASE__URL=database_url, STREAMS_SMTP__HOST="127.0.0.1", STREAMS_SMTP__PORT=str(smtp_server.port)
    )

    smtp_server.inbox.wait_for(3)
    time.sleep(3)
    inbox = smtp_server.inbox
    assert len(inbox.messages) == 3
    [reset_mail] = [m for m in inbox.to("alice@example.com") if m["Subject"] == "Reset your password"]
    assert "T0K3N-42" in reset_mail.get_payload()
    assert [m["Subject"] for m in inbox.to("alice@example.com")].count("November news") == 1
    [welcome] = inbox.to("dave@example.com")
    assert welcome["Subject"] == "Welcome to our platform, dave!"
    assert email_log(database_url) == [
        ("alice@example.com", "newsletter", "sent"),
        ("alice@example.com", "password_reset", "sent"),
        ("dave@example.com", "welcome", "sent"),
    ]
    log = worker.log_file.read_text()
    for event, error in (
        (unknown, "UnknownTemplateError: unknown email template 'birthday'"),
        (no_token, "TemplateDataError: template 'password_reset' needs 'token'"),
    ):
        assert re.search(f"dead-lettered event id={event.id} type=EmailNotification .* after 1 attempt\\(s\\): {error}", log)
    assert f"retrying event id={ghost.id} type=EmailNotification agent=emails in 1.00s (attempt 1 failed): EntityNotFoundError" in log
    assert worker.alive()


def test_a_failed_send_is_logged_as_failed_and_not_marked_processed(namespace, tmp_path, start_worker) -> None:
    url = f"sqlite:///{tmp_path / 'mail.db'}"
    seed_users(url, "alice")
    with EventProducer(namespace.settings()) as producer:
        event = producer.publish_email_notification("alice", "announcement", {"title": "Hello", "body": "World"})
    worker = start_worker(
        STREAMS_DATABASE__URL=url, STREAMS_SMTP__PORT=str(free_port()), STREAMS_SMTP__TIMEOUT="2", RETRY_MAX_ATTEMPTS="1"
    )
    deadline = time.monotonic() + 60
    while not email_log(url) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert email_log(url) == [("alice@example.com", "announcement", "failed")]
    engine = sync_engine(url)
    with Session(engine) as session:
        assert session.get(ProcessedEvent, (str(event.id), "emails.send")) is None
    engine.dispose()
    assert worker.alive()
