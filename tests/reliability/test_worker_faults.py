"""A worker killed mid-stream and restarted: every event processed once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from streams.producer import EventProducer
from tests.databases import seed_users
from tests.reliability.workload import Workload, assert_nothing_lost_or_doubled, progress, wait_for_everything

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(900)]

#: 100,000 events: 3,000 signups (a user row, a profile, a welcome email, a count each) among 97,000 post views.
WORKLOAD = Workload(users=3_000, posts=97, views_each=1_000)


def published_workload(namespace, postgres_server, smtp_server) -> tuple[str, dict[str, str]]:
    """A fresh database, the whole workload published, and the settings a worker needs for both."""
    database = postgres_server.new_database()
    seed_users(database)
    with EventProducer(namespace.settings()) as producer:
        producer.publish_many(WORKLOAD.events(), batch_size=5_000)
    return database, {"STREAMS_DATABASE__URL": database, "STREAMS_SMTP__PORT": str(smtp_server.port)}


def wait_for(reached: Callable[[], bool], alive: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not reached():
        assert alive(), f"a worker died before {what}"
        assert time.monotonic() < deadline, f"{what} not reached within {timeout:.0f}s"
        time.sleep(0.2)


def test_a_worker_killed_mid_stream_and_restarted_processes_every_event_once(
    namespace, start_worker, postgres_server, smtp_server, tmp_path, report,
) -> None:
    database, env = published_workload(namespace, postgres_server, smtp_server)
    worker = start_worker(**env)
    wait_for(lambda: progress(worker) >= WORKLOAD.users // 3, worker.alive, 240, "a third of the signups counted")
    counted = progress(worker)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    assert 0 < counted < WORKLOAD.users, "the worker was to be killed in the middle of the signups"

    restarted = start_worker(STREAMS_STATE__DATA_DIR=str(tmp_path / "worker0"), **env)
    ledger = wait_for_everything(WORKLOAD, restarted, database, smtp_server.inbox, 420, restarted.alive)
    figures = ledger.figures(WORKLOAD)
    report({**figures, "signups_counted_before_the_kill": counted})
    assert_nothing_lost_or_doubled(figures)
