"""What a worker does before it consumes: check the broker, create the retry topics, migrate the database."""

from __future__ import annotations

from typing import Any

import faust
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from sqlalchemy.exc import OperationalError

from streams.admin import ensure_topics
from streams.db.migrate import upgrade
from streams.errors import BrokerUnavailableError, DatabaseUnavailableError, StreamsError
from streams.settings import Settings
from streams.topics import retry_topic_configs


def check_broker(brokers: str, timeout: float = 10.0) -> None:
    """Raise BrokerUnavailableError unless a metadata request to ``brokers`` succeeds in time."""
    admin = AdminClient({"bootstrap.servers": brokers, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailableError(
            f"no Kafka broker answered at {brokers} within {timeout:.0f}s ({exc.args[0].str()}); "
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

    @app.on_worker_init.connect
    def on_worker_init(app: faust.App, **kwargs: Any) -> None:
        try:
            check_broker(settings.kafka.brokers)
            ensure_topics(
                settings.kafka.brokers, retry_topic_configs(settings.topics, settings.retry),
                settings.topics.partitions, settings.topics.replication_factor,
            )
            if settings.database.migrate_on_start:
                migrate_database(settings.database.url)
        except StreamsError as exc:
            raise SystemExit(f"streams: {exc}") from None
