"""The Faust application: ``faust -A streams.app worker -l info`` starts a worker.

Agents and the states of the state engine live outside the core and are found by autodiscovery,
so this module never imports them.
"""

from __future__ import annotations

import faust
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streams.agent_loop import FailureRouter
from streams.codec import EventCodec, build_codec, register_faust_codec
from streams.coordinator_lookup import retry_coordinator_lookups
from streams.db.engine import async_engine, session_factory
from streams.db.outage import OutageGate
from streams.dropped_events import give_back_dropped_events
from streams.errors import ConfigurationError
from streams.fetch_wait import cap_fetch_wait
from streams.flow_control import pause_topics_on_full_buffers
from streams.kafka_clients import faust_credentials
from streams.logs import logging_config
from streams.services.email import Mailer
from streams.priorities import PriorityGate, fetch_in_priority_order
from streams.relay import Relay, relay_forever
from streams.retry import RetryPolicy
from streams.settings import Settings, load_settings
from streams.stream_resume import resume_streams_after_recovery
from streams.topics import FAMILIES, EventTopics, RetryTopics, declare_event_topics, declare_retry_topics, tier_topic_names
from streams.worker import worker_class
from streams.worker_startup import install_startup_checks


def create_app(settings: Settings, codec: EventCodec) -> faust.App:
    register_faust_codec(codec)
    retry_coordinator_lookups()
    resume_streams_after_recovery()
    cap_fetch_wait(settings.kafka.fetch_max_wait)
    fetch_in_priority_order({settings.topics.for_family(family): settings.topics.weight(family) for family in FAMILIES})
    compression = None if settings.kafka.compression == "none" else settings.kafka.compression
    app = faust.App(
        settings.kafka.group_id,
        broker=[f"kafka://{broker.strip()}" for broker in settings.kafka.brokers.split(",")],
        broker_client_id=settings.kafka.client_id,
        broker_credentials=faust_credentials(settings.kafka),
        consumer_auto_offset_reset=settings.kafka.auto_offset_reset,
        processing_guarantee=settings.kafka.processing_guarantee,
        broker_commit_interval=settings.kafka.commit_interval,
        broker_max_poll_records=settings.kafka.max_poll_records,
        broker_session_timeout=settings.kafka.session_timeout,
        consumer_metadata_max_age_ms=round(settings.kafka.metadata_refresh * 1000),
        producer_compression_type=compression,
        datadir=settings.state.data_dir,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        web_bind=settings.web.host,
        web_port=settings.web.port,
        web_host=settings.web.advertised_host or settings.web.host,
        logging_config=logging_config(settings.monitoring),
        autodiscover=["agents", "tables"],
        origin="streams",
        Worker=worker_class(settings.worker.stop_timeout),
    )
    install_startup_checks(app, settings)
    give_back_dropped_events(app)
    pause_topics_on_full_buffers(app)

    @app.task
    async def relay_delayed_events() -> None:
        """Every worker relays a share of the delay tiers' partitions."""
        await relay_forever(lambda: Relay(
            settings.kafka, tier_topic_names(settings.topics, settings.retry), settings.topics.dead_letters,
        ))

    return app


try:
    settings = load_settings()
except ConfigurationError as exc:
    raise SystemExit(f"streams: {exc}") from None
codec = build_codec(settings.schema_registry.url)
app = create_app(settings, codec)
topics: EventTopics = declare_event_topics(app, settings.topics)
retry_topics: RetryTopics = declare_retry_topics(app, settings.topics, settings.retry)
failures = FailureRouter(app, RetryPolicy.from_settings(settings.retry), retry_topics)
#: Every family handler that may run at once, plus the dead-letter agent, the periodic jobs and the web view.
engine = async_engine(settings.database.url, sum(settings.topics.in_flight.values()) + 3)
sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
database = OutageGate(engine)
mailer = Mailer(settings.smtp)
priorities = PriorityGate(
    {family: settings.topics.weight(family) for family in FAMILIES}, settings.retry.retried_share,
)
