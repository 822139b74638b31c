"""What a worker does before it consumes: pin its CPUs, check the broker, create its topics, migrate the database."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import faust
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from sqlalchemy.exc import OperationalError

from streams.admin import ensure_topics
from streams.cpu_affinity import cpu_list, pin_process
from streams.db.migrate import upgrade
from streams.errors import BrokerUnavailableError, DatabaseUnavailableError, StreamsError
from streams.kafka_clients import LoginWatch, confluent_config
from streams.settings import KafkaSettings, Settings
from streams.topics import every_topic_config

logger = logging.getLogger(__name__)


def check_broker(kafka: KafkaSettings, timeout: float = 10.0) -> None:
    """Raise BrokerUnavailableError unless a metadata request to the brokers succeeds in time."""
    login = LoginWatch(kafka)
    admin = AdminClient(confluent_config(kafka, log_level=0, error_cb=login))
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=min(1.0, timeout))
            return
        except KafkaException as exc:
            admin.poll(0)
            login.check()
            if time.monotonic() >= deadline:
                raise BrokerUnavailableError(
                    f"no Kafka broker answered at {kafka.brokers} within {timeout:.0f}s ({exc.args[0].str()}); "
                    "start one with 'streams kafka start' or set KAFKA_BROKERS"
                ) from None


def migrate_database(url: str) -> None:
    """Bring the database to the newest schema; an unreachable database is one line, not a traceback."""
    try:
        upgrade(url)
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot migrate the database: {str(exc.orig).strip().splitlines()[0]}") from None


def install_startup_checks(app: faust.App, settings: Settings) -> None:
    """Run the checks when a worker starts, before Faust's own clients retry forever."""

    if settings.worker.cpus is not None:

        @app.task
        async def report_cpus() -> None:
            """Logging is set up after the pinning; say it once the worker runs."""
            logger.info("worker pinned to CPU(s) %s", cpu_list(os.sched_getaffinity(0)))

    @app.on_worker_init.connect  # type: ignore[arg-type]
    def on_worker_init(app: faust.App, **kwargs: Any) -> None:
        try:
            if settings.worker.cpus is not None:
                pin_process(settings.worker.cpus)
            check_broker(settings.kafka)
            ensure_topics(
                settings.kafka, every_topic_config(settings.kafka.group_id, settings.topics, settings.retry),
                settings.topics.partitions, settings.topics.replication_factor,
            )
            if settings.database.migrate_on_start:
                migrate_database(settings.database.url)
        except StreamsError as exc:
            raise SystemExit(f"streams: {exc}") from None
