"""The broker, then the database, gone for 10 s while events flow: everything is processed once."""

from __future__ import annotations

import time

import pytest

from streams.devkafka import LocalBroker
from tests.conftest import JARS_CACHE, Namespace, free_port
from tests.databases import seed_users
from tests.reliability.workload import SteadyPublisher, Workload, wait_for_everything

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(900)]

#: 21,000 events at 1,000 a second: 1,000 signups among 20,000 post views.
WORKLOAD = Workload(users=1_000, posts=20, views_each=1_000)
RATE = 1_000
OUTAGE_S = 10.0


def assert_nothing_lost_or_doubled(figures: dict[str, int]) -> None:
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["processed"] == figures["sent"] and figures["dead_letters"] == 0, figures


def wait_until_published(publisher: SteadyPublisher, count: int) -> None:
    while publisher.published < count and publisher.is_alive():
        time.sleep(0.05)


def test_a_broker_stopped_for_ten_seconds_mid_stream_loses_nothing(
    start_worker, postgres_server, smtp_server, tmp_path, report,
) -> None:
    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
    namespace = Namespace("outage", broker.start())
    try:
        database = postgres_server.new_database()
        seed_users(database)
        worker = start_worker(**namespace.env, STREAMS_DATABASE__URL=database, STREAMS_SMTP__PORT=str(smtp_server.port))
        publisher = SteadyPublisher(namespace.settings(), WORKLOAD, RATE)
        publisher.start()
        wait_until_published(publisher, WORKLOAD.size // 4)
        broker.stop()
        stopped_at = publisher.published
        time.sleep(OUTAGE_S)
        broker.start()
        publisher.join(timeout=300)
        ledger = wait_for_everything(WORKLOAD, worker, database, smtp_server.inbox, 300, worker.alive)
        figures = ledger.figures(WORKLOAD)
        report({**figures, "published_when_the_broker_stopped": stopped_at})
        assert worker.alive(), f"the worker stopped; see {worker.log_file}"
        assert_nothing_lost_or_doubled(figures)
    finally:
        broker.stop()


def test_a_database_gone_for_ten_seconds_mid_stream_loses_nothing(
    namespace, start_worker, postgres_server, smtp_server, report,
) -> None:
    database = postgres_server.new_database()
    seed_users(database)
    worker = start_worker(STREAMS_DATABASE__URL=database, STREAMS_SMTP__PORT=str(smtp_server.port))
    publisher = SteadyPublisher(namespace.settings(), WORKLOAD, RATE)
    publisher.start()
    wait_until_published(publisher, WORKLOAD.size // 4)
    postgres_server.halt()
    try:
        halted_at = publisher.published
        time.sleep(OUTAGE_S)
    finally:
        postgres_server.resume()
    publisher.join(timeout=300)
    ledger = wait_for_everything(WORKLOAD, worker, database, smtp_server.inbox, 300, worker.alive)
    figures = ledger.figures(WORKLOAD)
    report({**figures, "published_when_the_database_stopped": halted_at})
    assert worker.alive(), f"the worker stopped; see {worker.log_file}"
    assert_nothing_lost_or_doubled(figures)
