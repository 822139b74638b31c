"""The periodic jobs, called directly on SQLite and PostgreSQL: what they delete, keep and count, and how a
job that fails is kept from ending its schedule."""

import asyncio
import logging
import time
from datetime import date, datetime, timedelta, timezone

from prometheus_client import REGISTRY
from sqlalchemy import select, text

from agents.maintenance import clean_up_data, clean_up_email_log, compute_email_statistics, delivery_rate, run_job
from streams.db.engine import async_engine, session_factory
from streams.db.models import DataExport, EmailLog, EmailStatistics, Notification
from streams.db.outage import OutageGate
from tests.databases import seed_users

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)


def run_in_transaction(url: str, work):
    async def run():
        engine = async_engine(url)
        try:
            async with session_factory(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def test_data_cleanup_deletes_exports_with_their_files_after_7_days_and_notifications_after_30(database_url, tmp_path) -> None:
    seed_users(database_url, "alice")
    old_file, new_file = tmp_path / "export-old.csv", tmp_path / "export-new.csv"
    old_file.write_text("old")
    new_file.write_text("new")

    async def seed(session):
        session.add_all([
            DataExport(event_id="e-old", user_id="alice", format="csv", path=str(old_file), size_bytes=3, created_at=ago(days=8)),
            DataExport(event_id="e-new", user_id="alice", format="csv", path=str(new_file), size_bytes=3, created_at=ago(days=6)),
            Notification(user_id="alice", action="new_post", event_id="n-old", created_at=ago(days=31)),
            Notification(user_id="alice", action="new_post", event_id="n-new", created_at=ago(days=29)),
        ])

    run_in_transaction(database_url, seed)
    cleaned = run_in_transaction(database_url, lambda session: clean_up_data(session, NOW))

    assert (cleaned.exports, cleaned.files, cleaned.notifications) == (1, 1, 1)
    assert not old_file.exists() and new_file.read_text() == "new"

    async def remaining(session):
        exports = list(await session.scalars(select(DataExport.event_id)))
        notifications = list(await session.scalars(select(Notification.event_id)))
        return exports, notifications

    assert run_in_transaction(database_url, remaining) == (["e-new"], ["n-new"])


def test_email_log_keeps_30_days_and_failed_sends_7(database_url) -> None:
    seed_users(database_url)
    kept = {"sent-29d", "failed-6d"}

    async def seed(session):
        for name, status, days in (("sent-31d", "sent", 31), ("sent-29d", "sent", 29), ("failed-8d", "failed", 8), ("failed-6d", "failed", 6)):
            session.add(EmailLog(event_id=name, recipient="a@example.com", template="welcome", status=status, created_at=ago(days=days)))

    run_in_transaction(database_url, seed)
    assert run_in_transaction(database_url, lambda session: clean_up_email_log(session, NOW)) == 2
    assert set(run_in_transaction(database_url, lambda s: _scalars(s, select(EmailLog.event_id)))) == kept


async def _scalars(session, statement) -> list:
    return list(await session.scalars(statement))


def test_daily_statistics_count_one_day_and_replace_an_earlier_count(database_url) -> None:
    seed_users(database_url)
    yesterday = date(2026, 11, 23)

    async def seed(session):
        for n, (status, when) in enumerate(
            [("sent", ago(hours=20))] * 3 + [("failed", ago(hours=10)), ("sent", ago(days=2)), ("sent", ago(minutes=5))]
        ):
            session.add(EmailLog(event_id=f"e{n}", recipient="a@example.com", template="welcome", status=status, created_at=when))

    run_in_transaction(database_url, lambda session: compute_email_statistics(session, yesterday, NOW))
    run_in_transaction(database_url, seed)
    stats = run_in_transaction(database_url, lambda session: compute_email_statistics(session, yesterday, NOW))
    assert (stats.sent, stats.failed, stats.delivery_rate) == (3, 1, 75.0)
    stored = run_in_transaction(database_url, lambda s: _scalars(s, select(EmailStatistics)))
    assert [(row.day, row.sent, row.failed, row.delivery_rate) for row in stored] == [(yesterday, 3, 1, 75.0)]


def test_delivery_rate_is_a_percentage_and_100_when_nothing_was_attempted() -> None:
    assert delivery_rate(0, 0) == 100.0
    assert delivery_rate(2, 1) == 66.67
    assert delivery_rate(0, 4) == 0.0


def test_a_job_that_fails_is_logged_and_counted_and_does_not_raise(database_url, caplog) -> None:
    """Faust's crontab runs a job as a task of the app, where an error would crash the worker; ``run_job``
    keeps the error in the log (with its traceback) and the job's failed count, and reports the outcome."""
    seed_users(database_url)
    runs, last_success = "streams_periodic_job_runs_total", "streams_periodic_job_last_success_timestamp_seconds"
    before = REGISTRY.get_sample_value(runs, {"job": "broken_job", "outcome": "failed"}) or 0
    started = time.time()

    async def run() -> tuple[bool, bool]:
        engine = async_engine(database_url)
        sessions = session_factory(engine)

        async def broken() -> None:
            async with sessions.begin() as session:
                await session.execute(text("SELECT * FROM no_such_table"))

        async def fine() -> None:
            async with sessions.begin() as session:
                await session.execute(text("SELECT 1"))

        try:
            return await run_job("broken_job", broken, OutageGate(engine)), await run_job("fine_job", fine, OutageGate(engine))
        finally:
            await engine.dispose()

    with caplog.at_level(logging.ERROR, logger="agents.maintenance"):
        assert asyncio.run(run()) == (False, True)
    assert REGISTRY.get_sample_value(runs, {"job": "broken_job", "outcome": "failed"}) == before + 1
    assert REGISTRY.get_sample_value(runs, {"job": "broken_job", "outcome": "succeeded"}) is None
    assert REGISTRY.get_sample_value(last_success, {"job": "broken_job"}) is None
    assert REGISTRY.get_sample_value(last_success, {"job": "fine_job"}) >= started
    [record] = [r for r in caplog.records if "broken_job" in r.getMessage()]
    assert "runs again at its next time" in record.getMessage()
    assert record.exc_info is not None and "no_such_table" in str(record.exc_info[1])
