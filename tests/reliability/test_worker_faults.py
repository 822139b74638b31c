"""A worker killed mid-stream and restarted: every event processed once."""

from __future__ import annotations

import signal
import time

import pytest

from streams.producer import EventProducer
from tests.databases import seed_users
from tests.reliability.workload import Workload, progress, wait_for_everything

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(900)]

#: 100,000 events: 3,000 signups (a user row, a profile, a welcome email, a count each) among 97,000 post views.
WORKLOAD = Workload(users=3_000, posts=97, views_each=1_000)


def publish(namespace, workload: Workload) -> None:
    with EventProducer(namespace.settings()) as producer:
        producer.publish_many(workload.events(), batch_size=5_000)


def assert_nothing_lost_or_doubled(figures: dict[str, int]) -> None:
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["processed"] == figures["sent"], figures
    assert figures["dead_letters"] == 0, figures


def test_a_worker_killed_mid_stream_and_restarted_processes_every_event_once(
    namespace, start_worker, postgres_server, smtp_server, tmp_path, report,
) -> None:
    database = postgres_server.new_database()
    seed_users(database)
    publish(namespace, WORKLOAD)
    env = {"STREAMS_DATABASE__URL": database, "STREAMS_SMTP__PORT": str(smtp_server.port),
           "STREAMS_TOPICS__IN_FLIGHT": '{"user": 4}'}
    worker = start_worker(**env)
    deadline = time.monotonic() + 240
    while progress(worker) < WORKLOAD.users // 3 and time.monotonic() < deadline:
        assert worker.alive(), worker.log_file
        time.sleep(0.2)
    counted = progress(worker)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    assert 0 < counted < WORKLOAD.users, "the worker was to be killed in the middle of the signups"

    restarted = start_worker(STREAMS_STATE__DATA_DIR=str(tmp_path / "worker0"), **env)
    ledger = wait_for_everything(WORKLOAD, restarted, database, smtp_server.inbox, 420, restarted.alive)
    figures = ledger.figures(WORKLOAD)
    report({**figures, "signups_counted_before_the_kill": counted})
    assert_nothing_lost_or_doubled(figures)

