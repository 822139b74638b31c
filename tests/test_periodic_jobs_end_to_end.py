"""The periodic jobs on their crontab timers in a real worker, with the database gone when they fire."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from streams.db.engine import sync_engine
from streams.db.models import DataExport, EmailLog, EmailStatistics, Notification
from streams.worker_process import WorkerProcess
from tests.databases import seed_users
from tests.prometheus_reading import samples

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

EVERY_MINUTE = "* * * * *"
JOBS = ("data_cleanup", "email_log_cleanup", "email_statistics")


def answer(worker: WorkerProcess, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(worker.url + path, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(0.5)


def yesterday_of_now() -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()


def seed_old_and_new_rows(database: Engine, exports: Path) -> None:
    """Rows each job deletes or keeps, and yesterday's emails: 3 sent, 1 failed."""
    now = datetime.now(timezone.utc)
    yesterday_noon = datetime.combine(now.date() - timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=12)
    (exports / "old.csv").write_text("old")
    (exports / "new.csv").write_text("new")
    with Session(database) as session, session.begin():
        session.add_all([
            DataExport(event_id="x-old", user_id="ada", format="csv", path=str(exports / "old.csv"), size_bytes=3,
                       created_at=now - timedelta(days=8)),
            DataExport(event_id="x-new", user_id="ada", format="csv", path=str(exports / "new.csv"), size_bytes=3,
                       created_at=now - timedelta(days=1)),
            Notification(user_id="ada", action="new_post", event_id="n-old", created_at=now - timedelta(days=31)),
            Notification(user_id="ada", action="new_post", event_id="n-new", created_at=now - timedelta(days=2)),
            EmailLog(event_id="e-old", recipient="ada@example.com", template="welcome", status="sent",
                     created_at=now - timedelta(days=31)),
            EmailLog(event_id="e-failed-old", recipient="ada@example.com", template="welcome", status="failed",
                     created_at=now - timedelta(days=8)),
            *(EmailLog(event_id=f"e-y{n}", recipient="ada@example.com", template="welcome", status=status,
                       created_at=yesterday_noon) for n, status in enumerate(["sent", "sent", "sent", "failed"])),
        ])


def test_jobs_that_fire_while_the_database_is_gone_run_once_it_is_back_and_the_worker_carries_on(
    namespace, start_worker, postgres_server, tmp_path,
) -> None:
    url = postgres_server.new_database()
    seed_users(url, "ada")
    worker = start_worker(
        STREAMS_DATABASE__URL=url,
        **{f"STREAMS_MAINTENANCE__{job.upper()}": EVERY_MINUTE for job in JOBS},
    )
    wait_until(lambda: answer(worker, "/health")[0] == 200, 60, "the worker was not healthy (the leader)")
    into_minute = time.time() % 60
    if not 3 <= into_minute <= 50:
        time.sleep((63 - into_minute) % 60)
    status, body = answer(worker, "/email-stats")
    assert status == 200
    assert body["days"] in ([], [{"day": yesterday_of_now(), "sent": 0, "failed": 0, "delivery_rate": 100.0}]), (
        "a run before the rows are seeded counts no emails"
    )

    database = sync_engine(url)
    seed_old_and_new_rows(database, tmp_path)
    database.dispose()
    postgres_server.halt()
    try:
        fired = 60 * math.ceil(time.time() / 60)
        time.sleep(fired + 5 - time.time())
        status, body = answer(worker, "/email-stats")
        assert (status, body) == (503, {"error": "the database cannot be reached; try again shortly"})
        assert worker.alive(), f"the worker stopped; see {worker.log_file}"
        assert "database unreachable" in worker.log_file.read_text()
    finally:
        postgres_server.resume()

    def finished() -> bool:
        done = samples(worker.url + "/metrics")
        return all(
            done.get(("streams_periodic_job_last_success_timestamp_seconds", frozenset({("job", job)})), 0) >= fired
            for job in JOBS
        )

    wait_until(finished, 60, "the jobs did not all succeed once the database was back")
    assert worker.alive(), f"the worker stopped; see {worker.log_file}"
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    status, body = answer(worker, "/email-stats")
    assert status == 200
    assert body["days"][0] == {"day": yesterday.isoformat(), "sent": 3, "failed": 1, "delivery_rate": 75.0}
    with Session(database) as session:
        assert set(session.scalars(select(DataExport.event_id))) == {"x-new"}
        assert set(session.scalars(select(Notification.event_id))) == {"n-new"}
        assert set(session.scalars(select(EmailLog.event_id))) == {"e-y0", "e-y1", "e-y2", "e-y3"}
        assert session.scalar(select(EmailStatistics.delivery_rate).where(EmailStatistics.day == yesterday)) == 75.0
    database.dispose()
    assert not (tmp_path / "old.csv").exists() and (tmp_path / "new.csv").read_text() == "new"
    failures = {key: value for key, value in samples(worker.url + "/metrics").items()
                if key[0] == "streams_periodic_job_runs_total" and ("outcome", "failed") in key[1]}
    assert failures == {}
