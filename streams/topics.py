"""Every topic the service reads or writes: default names here, overrides through settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from streams.settings import TopicSettings

USER_EVENTS = "user-events"
POST_EVENTS = "post-events"
EMAIL_EVENTS = "email-events"
EXPORT_EVENTS = "export-events"

#: How much of a backlog each priority consumes relative to the others.
PRIORITY_WEIGHTS = {"critical": 10, "high": 5, "default": 1, "low": 1}
DEFAULT_PRIORITIES = {"user": "default", "post": "high", "email": "low", "export": "low"}


@dataclass(frozen=True)
class EventTopics:
    """The Faust topic of each event family, Avro-encoded values and raw entity-id keys."""

    users: faust.TopicT
    posts: faust.TopicT
    emails: faust.TopicT
    exports: faust.TopicT

    def names(self) -> list[str]:
        return [topic.get_topic_name() for topic in (self.users, self.posts, self.emails, self.exports)]


def declare_event_topics(app: faust.App, names: TopicSettings) -> EventTopics:
    """The worker creates missing family topics at start, so it never waits on a topic that appears later."""

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="avro",
            partitions=names.partitions,
            replicas=names.replication_factor,
            internal=True,
        )

    return EventTopics(
        users=topic(names.user_events),
        posts=topic(names.post_events),
        emails=topic(names.email_events),
        exports=topic(names.export_events),
    )
