"""Workers killed, leaving and joining mid-stream: every event processed once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from streams.producer import EventProducer
from streams.settings import load_settings
from tests.databases import seed_users
from tests.reliability.workload import (
    Workload, assert_nothing_lost_or_doubled, progress, signups_in_flight, users_handled, wait_for_everything,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(900)]

#: 100,000 events: 3,000 signups (a user row, a profile, a welcome email, a count each) among 97,000 post views.
WORKLOAD = Workload(users=3_000, posts=97, views_each=1_000)
#: A leaving worker waits for its agents before it lets its partitions go, at most worker.stop_timeout;
#: a worker still running this long after SIGTERM is killed, as a service manager would.
KILL_AFTER_S = 120.0
#: What the process may take to end after its stop timeout.
EXIT_SLACK_S = 3.0


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
    wait_for(lambda: users_handled(database) >= WORKLOAD.users // 3, worker.alive, 240, "a third of the users")
    counted, handled = progress(worker), users_handled(database)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    assert 0 < handled < WORKLOAD.users, "the worker was to be killed in the middle of the signups"

    restarted = start_worker(STREAMS_STATE__DATA_DIR=str(tmp_path / "worker0"), **env)
    ledger = wait_for_everything(WORKLOAD, restarted, database, smtp_server.inbox, 420, restarted.alive)
    figures = ledger.figures(WORKLOAD)
    report({**figures, "signups_counted_before_the_kill": counted, "users_written_before_the_kill": handled})
    assert_nothing_lost_or_doubled(figures, duplicate_emails_at_most=signups_in_flight())


def test_workers_joining_and_leaving_mid_stream_process_every_event_once(
    namespace, start_worker, postgres_server, smtp_server, report,
) -> None:
    database, env = published_workload(namespace, postgres_server, smtp_server)
    first = start_worker(**env)
    wait_for(lambda: users_handled(database) >= WORKLOAD.users // 4, first.alive, 300, "a quarter of the users")
    second = start_worker(**env)
    joined_at = users_handled(database)
    wait_for(lambda: users_handled(database) >= WORKLOAD.users // 2, second.alive, 300, "half of the users")
    left_at = users_handled(database)
    stopping = time.monotonic()
    exit_code = first.stop(timeout=KILL_AFTER_S)
    stop_seconds = time.monotonic() - stopping
    third = start_worker(**env)
    assert left_at < WORKLOAD.users, "the first worker was to leave in the middle of the signups"

    ledger = wait_for_everything(
        WORKLOAD, second, database, smtp_server.inbox, 420, lambda: second.alive() and third.alive(),
    )
    figures = ledger.figures(WORKLOAD)
    report({**figures, "users_when_the_second_joined": joined_at, "users_when_the_first_left": left_at,
            "seconds_the_first_took_to_stop": round(stop_seconds), "its_exit_code": exit_code})
    assert exit_code == 0, f"the leaving worker exited with {exit_code}; see {first.log_file}"
    bound = load_settings().worker.stop_timeout + EXIT_SLACK_S
    assert stop_seconds <= bound, f"the leaving worker took {stop_seconds:.1f}s to stop; see {first.log_file}"
    assert_nothing_lost_or_doubled(figures)
