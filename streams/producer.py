"""The producer upstream services use: validated, Avro-encoded, keyed by entity id, never silently lossy.

Built on confluent-kafka with idempotence and acks=all. Every event is validated against its
schema before anything is queued, so a bad field raises an error naming it and nothing is sent.
Delivery failures are collected and raised from ``flush()``. Keys are partitioned with murmur2,
as the Java clients and the worker's own producer do, so every producer puts a key on the same
partition.

A delayed event (``publish(event, delay=...)``, ``publish_at(event, when)``) waits in a delay-tier
topic, and the workers' relay sends it to its family topic when it is due, never earlier.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.codec import EventCodec, EventValidationError, build_codec
from streams.errors import BrokerUnavailableError, StreamsError
from streams.events import (
    POST_ACTIVITIES, DataExport, EmailNotification, Event, PostActivity, PostCreated, UserCreated, UserFollowed,
    UserUnfollowed, UserUpdated,
)
from streams.kafka_clients import LoginWatch, confluent_config
from streams.retry import DUE_AT, ORIGIN_TOPIC, tier_for, write_headers
from streams.settings import KafkaSettings, Settings, load_settings
from streams.topics import FAMILIES, tier_topic_name


#: Events publish() queues between polls that serve delivery reports; each poll costs about as much
#: as a small event's framing, and the reports only record failures, which flush() raises.
POLL_EVERY = 64


class DeliveryError(StreamsError):
    """The broker did not acknowledge one or more events."""

    def __init__(self, failures: list[tuple[str, KafkaError]]) -> None:
        first_topic, first_error = failures[0]
        super().__init__(f"{len(failures)} event(s) not delivered; first to {first_topic}: {first_error.str()}")
        self.failures = failures


def librdkafka_settings(kafka: KafkaSettings) -> dict[str, Any]:
    """How the producer drives librdkafka: idempotent, acks from every in-sync replica, murmur2 like Java."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": kafka.compression,
        "linger.ms": 5,
        "partitioner": "murmur2_random",
        "log_level": 0,
    }


def user_id_of(user: Mapping[str, Any] | str) -> Any:
    """A user given as its id, or as a mapping with an "id"."""
    return user if isinstance(user, str) else user.get("id")


class EventProducer:
    """Publishes typed events to their family's topic. Use as a context manager, or call close()."""

    def __init__(self, settings: Settings | None = None, codec: EventCodec | None = None) -> None:
        self.settings = settings or load_settings()
        self.codec = codec or build_codec(self.settings.schema_registry.url)
        kafka = self.settings.kafka
        self._login = LoginWatch(kafka)
        self._producer = Producer(confluent_config(kafka, error_cb=self._login, **librdkafka_settings(kafka)))
        self._family_topics = {family: self.settings.topics.for_family(family) for family in FAMILIES}
        self._failures: list[tuple[str, KafkaError]] = []
        self._lock = threading.Lock()
        self._unpolled = 0

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            with self._lock:
                self._failures.append((message.topic() or "", error))

    def publish(self, event: Event, topic: str | None = None, key: str | None = None, delay: float | None = None) -> None:
        """Validate, encode and queue one event to its family's topic; delivery is confirmed by flush().

        With ``delay`` (seconds) the event reaches its topic no earlier than that from now.
        """
        topic = topic or self._family_topics[event.family]
        payload = self.codec.encode(event)
        key_bytes = (key or event.key()).encode()
        if delay is not None and delay > 0:
            self._produce_delayed(topic, key_bytes, payload, time.time() + delay)
            return
        try:
            self._producer.produce(topic, payload, key_bytes, on_delivery=self._on_delivery)
        except BufferError:
            self._produce(topic, key_bytes, payload)
            return
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self._producer.poll(0)
            self._unpolled = 0

    def publish_at(self, event: Event, when: datetime, topic: str | None = None, key: str | None = None) -> None:
        """Like publish, delivered no earlier than ``when`` (an aware datetime)."""
        if when.tzinfo is None:
            raise ValueError("publish_at needs an aware datetime, e.g. datetime.now(timezone.utc)")
        self.publish(event, topic, key, delay=when.timestamp() - time.time())

    def _produce_delayed(self, topic: str, key: bytes, payload: bytes, due: float) -> None:
        tier = tier_for(self.settings.retry.delay_tiers, due - time.time())
        headers = write_headers({ORIGIN_TOPIC: topic, DUE_AT: round(due * 1000)})
        self._produce(tier_topic_name(self.settings.topics.retry_prefix, tier), key, payload, headers)

    def send_raw(
        self, topic: str, key: bytes | None, payload: bytes, headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        """Queue bytes as they are (a replayed dead letter); delivery is confirmed by flush()."""
        self._produce(topic, key, payload, headers, partition)

    def publish_many(self, events: Iterable[Event], batch_size: int = 100) -> int:
        """Validate and encode every event first, so a bad one raises before any is sent; then send in batches."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        encoded = [self.encode(event) for event in events]
        for start in range(0, len(encoded), batch_size):
            self.send_encoded(encoded[start:start + batch_size])
        return len(encoded)

    def encode(self, event: Event) -> tuple[str, str, bytes]:
        """The event's topic, key and bytes; raises EventValidationError for an event its schema rejects."""
        return self._family_topics[event.family], event.key(), self.codec.encode(event)

    def send_encoded(self, encoded: Sequence[tuple[str, str, bytes]], due: float | None = None) -> None:
        """Queue events encode() made; delivery is confirmed by flush(). With ``due`` (epoch seconds) they
        reach their topics no earlier than that."""
        for topic, key, payload in encoded:
            if due is None:
                self._produce(topic, key, payload)
            else:
                self._produce_delayed(topic, key.encode(), payload, due)
        self._producer.poll(0)

    def _produce(
        self, topic: str, key: str | bytes | None, payload: bytes, headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
    ) -> None:
        key_bytes = key.encode() if isinstance(key, str) else key
        options: dict[str, Any] = {"on_delivery": self._on_delivery}
        if headers:
            options["headers"] = list(headers)
        if partition is not None:
            options["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, payload, key_bytes, **options)
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def publish_user_created(self, user: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> UserCreated:
        """A signup; ``user`` has id, email, username and optionally full_name."""
        event = UserCreated.new(
            metadata,
            user_id=user.get("id"),
            email=user.get("email"),
            username=user.get("username"),
            full_name=user.get("full_name"),
        )
        self.publish(event)
        return event

    def publish_user_updated(self, user: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> UserUpdated:
        """A profile change; ``user`` has id and only the fields that changed."""
        fields = {name: user.get(name) for name in ("email", "username", "full_name", "bio")}
        event = UserUpdated.new(metadata, user_id=user.get("id"), **fields)
        self.publish(event)
        return event

    def publish_follow(
        self, follower: Mapping[str, Any] | str, followed: Mapping[str, Any] | str,
        metadata: Mapping[str, str] | None = None,
    ) -> UserFollowed:
        """``follower`` starts following ``followed`` (each a mapping with an id, or the id itself)."""
        event = UserFollowed.new(metadata, user_id=user_id_of(follower), followed_id=user_id_of(followed))
        self.publish(event)
        return event

    def publish_unfollow(
        self, follower: Mapping[str, Any] | str, followed: Mapping[str, Any] | str,
        metadata: Mapping[str, str] | None = None,
    ) -> UserUnfollowed:
        """``follower`` stops following ``followed``."""
        event = UserUnfollowed.new(metadata, user_id=user_id_of(follower), followed_id=user_id_of(followed))
        self.publish(event)
        return event

    def publish_post_created(self, post: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> PostCreated:
        """A new post; ``post`` has id, author_id and content."""
        event = PostCreated.new(metadata, post_id=post.get("id"), author_id=post.get("author_id"), content=post.get("content"))
        self.publish(event)
        return event

    def publish_post_activity(
        self,
        activity: str,
        post_id: str,
        user_id: str,
        comment_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PostActivity:
        """A view, like, comment or share of a post (``activity``: viewed, liked, commented, shared)."""
        if activity not in POST_ACTIVITIES:
            raise EventValidationError("PostActivity", "activity", f"{activity!r} is not one of {sorted(POST_ACTIVITIES)}")
        extra = {"comment_id": comment_id} if activity == "commented" else {}
        event = POST_ACTIVITIES[activity].new(metadata, post_id=post_id, user_id=user_id, **extra)
        self.publish(event)
        return event

    def publish_email_notification(
        self,
        user: Mapping[str, Any] | str,
        template: str,
        data: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> EmailNotification:
        """Ask for a templated email to ``user`` (a mapping with an id, or the id itself)."""
        event = EmailNotification.new(metadata, user_id=user_id_of(user), template=template, data=dict(data or {}))
        self.publish(event)
        return event

    def publish_data_export(
        self,
        user: Mapping[str, Any] | str,
        format: str,
        filters: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> DataExport:
        """Ask for an export of a user's data as csv, json or pdf; filters: posts_limit (default 100)."""
        event = DataExport.new(metadata, user_id=user_id_of(user), format=format, filters={"posts_limit": 100, **(filters or {})})
        self.publish(event)
        return event

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued event; raise DeliveryError or BrokerUnavailableError if any is not acknowledged."""
        deadline = time.monotonic() + timeout
        remaining = self._producer.flush(min(1.0, timeout))
        while remaining and time.monotonic() < deadline:
            self._login.check()
            remaining = self._producer.flush(min(1.0, deadline - time.monotonic()))
        self._login.check()
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise DeliveryError(failures)
        if remaining:
            raise BrokerUnavailableError(
                f"{remaining} event(s) still unacknowledged after {timeout:.0f}s; is Kafka up at {self.settings.kafka.brokers}?"
            )

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
