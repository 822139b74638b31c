"""Periodic jobs on Faust crontab timers, each run by the leader worker only, at the times of the
``maintenance`` settings (UTC):

- data cleanup: exports (rows and files) after 7 days, notifications after 30 days;
- email-log cleanup: entries after 30 days, failed ones after 7;
- email statistics: yesterday's sent and failed emails and the delivery rate, for the web view.

Each job is a plain function of a session and a time, so tests call it directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from streams import metrics
from streams.app import app, database, sessions, settings
from streams.db.engine import conflict_insert
from streams.db.models import DataExport, EmailLog, EmailStatistics, Notification
from streams.db.outage import OutageGate

logger = logging.getLogger(__name__)

EXPORT_RETENTION = timedelta(days=7)
NOTIFICATION_RETENTION = timedelta(days=30)
EMAIL_LOG_RETENTION = timedelta(days=30)
FAILED_EMAIL_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class DataCleanup:
    exports: int
    files: int
    notifications: int


async def clean_up_data(session: AsyncSession, now: datetime) -> DataCleanup:
    """Delete old exports with their files, and old notifications."""
    old_exports = list(await session.scalars(select(DataExport).where(DataExport.created_at < now - EXPORT_RETENTION)))
    files = 0
    for export in old_exports:
        path = Path(export.path)
        if path.is_file():
            await asyncio.to_thread(path.unlink)
            files += 1
    if old_exports:
        await session.execute(delete(DataExport).where(DataExport.id.in_([export.id for export in old_exports])))
    notifications = cast(CursorResult[Any], await session.execute(
        delete(Notification).where(Notification.created_at < now - NOTIFICATION_RETENTION)
    ))
    return DataCleanup(len(old_exports), files, notifications.rowcount)


async def clean_up_email_log(session: AsyncSession, now: datetime) -> int:
    """Delete email-log entries after 30 days, failed ones after 7; the number deleted."""
    result = cast(CursorResult[Any], await session.execute(
        delete(EmailLog).where(
            (EmailLog.created_at < now - EMAIL_LOG_RETENTION)
            | ((EmailLog.status == "failed") & (EmailLog.created_at < now - FAILED_EMAIL_RETENTION))
        )
    ))
    return result.rowcount


def delivery_rate(sent: int, failed: int) -> float:
    """Sent as a percentage of attempts, to 2 decimals; 100.0 when nothing was attempted."""
    attempts = sent + failed
    return round(100 * sent / attempts, 2) if attempts else 100.0


async def compute_email_statistics(session: AsyncSession, day: date, now: datetime) -> EmailStatistics:
    """Count one UTC day's emails and keep the result, replacing an earlier count of that day."""
    start = datetime.combine(day, time(), timezone.utc)
    counts = dict(
        (await session.execute(
            select(EmailLog.status, func.count())
            .where(EmailLog.created_at >= start, EmailLog.created_at < start + timedelta(days=1))
            .group_by(EmailLog.status)
        )).all()
    )
    sent, failed = counts.get("sent", 0), counts.get("failed", 0)
    values = {"day": day, "sent": sent, "failed": failed, "delivery_rate": delivery_rate(sent, failed), "computed_at": now}
    statement = conflict_insert(session, EmailStatistics).values(values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["day"], set_={k: v for k, v in values.items() if k != "day"})
    )
    return EmailStatistics(**values)


async def run_job(name: str, job: Callable[[], Awaitable[object]], gate: OutageGate) -> bool:
    """Run a periodic job without letting it end its schedule or the worker: Faust's crontab runs a job as a
    task of the app, and an error out of one crashes the worker. A job that meets a database outage waits for
    the database with the agents and runs again; any other error is logged and counted, and the job runs
    again at its next time. The jobs are idempotent, so a run cut short by an outage is safe to repeat."""
    try:
        await gate.through_outages(job)
    except Exception:
        metrics.PERIODIC_JOB_RUNS.labels(name, "failed").inc()
        logger.exception("periodic job %s failed; it runs again at its next time", name)
        return False
    metrics.PERIODIC_JOB_RUNS.labels(name, "succeeded").inc()
    metrics.PERIODIC_JOB_LAST_SUCCESS.labels(name).set_to_current_time()
    return True


async def data_cleanup() -> None:
    async with sessions.begin() as session:
        cleaned = await clean_up_data(session, datetime.now(timezone.utc))
    logger.info("data cleanup: %d exports (%d files), %d notifications", cleaned.exports, cleaned.files, cleaned.notifications)


async def email_log_cleanup() -> None:
    async with sessions.begin() as session:
        deleted = await clean_up_email_log(session, datetime.now(timezone.utc))
    logger.info("email log cleanup: %d entries", deleted)


async def email_statistics() -> None:
    now = datetime.now(timezone.utc)
    async with sessions.begin() as session:
        stats = await compute_email_statistics(session, now.date() - timedelta(days=1), now)
    logger.info("email statistics %s: sent=%d failed=%d rate=%.2f%%", stats.day, stats.sent, stats.failed, stats.delivery_rate)


def schedule(job: Callable[[], Awaitable[None]], cron: str) -> None:
    """Run ``job`` at the times of ``cron`` (UTC) on the leader worker only, through ``run_job``."""
    name = job.__name__

    async def scheduled() -> None:
        await run_job(name, job, database)

    scheduled.__name__ = scheduled.__qualname__ = name
    app.crontab(cron, timezone=timezone.utc, on_leader=True)(scheduled)


schedule(data_cleanup, settings.maintenance.data_cleanup)
schedule(email_log_cleanup, settings.maintenance.email_log_cleanup)
schedule(email_statistics, settings.maintenance.email_statistics)
