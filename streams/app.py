"""The Faust application: ``faust -A streams.app worker -l info`` starts a worker.

Agents and tables live outside the core and are found by autodiscovery, so this module never
imports them.
"""

from __future__ import annotations

import faust
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streams.codec import build_codec, register_faust_codec
from streams.db.engine import async_engine, session_factory
from streams.errors import ConfigurationError
from streams.services.email import Mailer
from streams.settings import Settings, load_settings
from streams.topics import EventTopics, declare_event_topics
from streams.worker_startup import install_startup_checks


def create_app(settings: Settings) -> faust.App:
    register_faust_codec(build_codec(settings.schema_registry.url))
    compression = None if settings.kafka.compression == "none" else settings.kafka.compression
    app = faust.App(
        settings.kafka.group_id,
        broker=[f"kafka://{broker.strip()}" for broker in settings.kafka.brokers.split(",")],
        broker_client_id=settings.kafka.client_id,
        consumer_auto_offset_reset=settings.kafka.auto_offset_reset,
        processing_guarantee=settings.kafka.processing_guarantee,
        producer_compression_type=compression,
        store=settings.state.store,
        datadir=settings.state.data_dir,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        web_bind=settings.web.host,
        web_port=settings.web.port,
        web_host=settings.web.host,
        autodiscover=["agents", "tables"],
        origin="streams",
    )
    install_startup_checks(app, settings)
    return app


try:
    settings = load_settings()
except ConfigurationError as exc:
    raise SystemExit(f"streams: {exc}") from None
app = create_app(settings)
topics: EventTopics = declare_event_topics(app, settings.topics)
sessions: async_sessionmaker[AsyncSession] = session_factory(async_engine(settings.database.url))
mailer = Mailer(settings.smtp)
