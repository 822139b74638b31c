"""The broker, then the database, gone for 10 s while events flow: everything is processed once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from streams.devkafka import LocalBroker
from tests.conftest import JARS_CACHE, Namespace, free_port
from tests.databases import seed_users
from tests.reliability.workload import (
    SteadyPublisher, Workload, assert_nothing_lost_or_doubled, signups_in_flight, wait_for_everything,
)

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(900)]

#: 21,000 events at 1,000 a second: 1,000 signups among 20,000 post views.
WORKLOAD = Workload(users=1_000, posts=20, views_each=1_000)
RATE = 1_000
OUTAGE_S = 10.0


def wait_until_published(publisher: SteadyPublisher, count: int) -> None:
    while publisher.published < count and publisher.is_alive():
        time.sleep(0.05)


def through_an_outage(
    namespace: Namespace, start_worker, postgres_server, smtp_server, stop: Callable[[], object],
    start: Callable[[], object],
) -> tuple[dict[str, int], int]:
    """Publish the workload steadily, ``stop`` something a quarter of the way in and ``start`` it again
    ``OUTAGE_S`` later; the ledger's figures once everything is through, and what was published at the stop."""
    database = postgres_server.new_database()
    seed_users(database)
    worker = start_worker(**namespace.env, STREAMS_DATABASE__URL=database, STREAMS_SMTP__PORT=str(smtp_server.port))
    publisher = SteadyPublisher(namespace.settings(), WORKLOAD, RATE)
    publisher.start()
    wait_until_published(publisher, WORKLOAD.size // 4)
    stop()
    try:
        stopped_at = publisher.published
        time.sleep(OUTAGE_S)
    finally:
        start()
    publisher.join(timeout=300)
    ledger = wait_for_everything(WORKLOAD, worker, database, smtp_server.inbox, 300, worker.alive)
    assert worker.alive(), f"the worker stopped; see {worker.log_file}"
    return ledger.figures(WORKLOAD), stopped_at


def test_a_broker_stopped_for_ten_seconds_mid_stream_loses_nothing(
    start_worker, postgres_server, smtp_server, tmp_path, report,
) -> None:
    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
    namespace = Namespace("outage", broker.start())
    try:
        figures, stopped_at = through_an_outage(
            namespace, start_worker, postgres_server, smtp_server, broker.stop, broker.start,
        )
    finally:
        broker.stop()
    report({**figures, "published_when_the_broker_stopped": stopped_at})
    assert_nothing_lost_or_doubled(figures)


def test_a_database_gone_for_ten_seconds_mid_stream_loses_nothing(
    namespace, start_worker, postgres_server, smtp_server, report,
) -> None:
    figures, stopped_at = through_an_outage(
        namespace, start_worker, postgres_server, smtp_server, postgres_server.halt, postgres_server.resume,
    )
    report({**figures, "published_when_the_database_stopped": stopped_at})
    assert_nothing_lost_or_doubled(figures, duplicate_emails_at_most=signups_in_flight())
