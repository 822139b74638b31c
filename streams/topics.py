"""Every topic the service reads or writes: default names here, overrides through settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import faust

    from streams.settings import RetrySettings, TopicSettings

USER_EVENTS = "user-events"
POST_EVENTS = "post-events"
EMAIL_EVENTS = "email-events"
EXPORT_EVENTS = "export-events"
RETRY_PREFIX = "retry"
DEAD_LETTERS = "dead-letters"
#: Per-user statistic changes, re-keyed by user id from the post and follow events that cause them.
USER_STATS_CHANGES = "user-stats-changes"

#: The state engine's states, each changelogged to ``<app id>-<state>-changelog`` (compacted) with its source's
#: partitions.
SIGNUP_PARTIALS = "signup-partials"
POST_ENGAGEMENT = "post-engagement"
USER_STATS = "user-stats"
FOLLOWS = "follows"
TABLES = (SIGNUP_PARTIALS, POST_ENGAGEMENT, USER_STATS, FOLLOWS)

#: Seconds each delay-tier topic holds an event. An event waits in the longest tier that does not
#: overshoot its due time, so every tier but the shortest releases its events in the order they came.
DELAY_TIERS = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0)

Family = Literal["user", "post", "email", "export"]
Priority = Literal["critical", "high", "default", "low"]
#: How much of a backlog each priority consumes relative to the others.
PRIORITY_WEIGHTS: dict[Priority, int] = {"critical": 10, "high": 5, "default": 1, "low": 1}
DEFAULT_PRIORITIES: dict[Family, Priority] = {"user": "default", "post": "high", "email": "low", "export": "low"}
FAMILIES: tuple[Family, ...] = tuple(DEFAULT_PRIORITIES)
#: Events of a family handled at once by each worker (one key's still in order): it pays where handlers
#: wait on the database and the SMTP server. Exports are mostly the worker's own CPU, so one at a time.
DEFAULT_IN_FLIGHT: dict[Family, int] = {"user": 4, "post": 4, "email": 8, "export": 1}


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


def tier_topic_name(prefix: str, delay: float) -> str:
    """The topic of one delay tier, e.g. retry-4000ms."""
    return f"{prefix}-{round(delay * 1000)}ms"


def state_group_id(group_id: str) -> str:
    """The consumer group through which the state engines of the app ``group_id`` share the sources' partitions."""
    return f"{group_id}-state"


def relay_group_id(group_id: str) -> str:
    """The consumer group through which the relays of the app ``group_id`` share the tiers' partitions."""
    return f"{group_id}-relay"


def tier_topic_names(names: TopicSettings, retry: RetrySettings) -> dict[str, float]:
    """Every delay-tier topic and the seconds it holds an event."""
    return {tier_topic_name(names.retry_prefix, delay): delay for delay in retry.delay_tiers}


def retry_topic_configs(names: TopicSettings, retry: RetrySettings) -> dict[str, dict[str, str]]:
    """The topic configuration of every delay tier and of the dead-letter topic.

    Tiers use broker time (LogAppendTime), so the order of a tier partition is the order of its
    release times, whichever producer wrote to it.
    """
    configs = {name: {"message.timestamp.type": "LogAppendTime"} for name in tier_topic_names(names, retry)}
    return {**configs, names.dead_letters: {}}


def changelog_topic_name(app_id: str, table: str) -> str:
    """The changelog topic of a state of the state engine."""
    return f"{app_id}-{table}-changelog"


def family_topic_names(names: TopicSettings) -> list[str]:
    """The four families' topics, which the agents consume."""
    return [names.user_events, names.post_events, names.email_events, names.export_events]


def watched_topic_names(names: TopicSettings) -> list[str]:
    """The topics whose lag /health, the metrics and ``streams lag`` report for the agents' group: the families, and
    dead letters. The state engine's sources are reported per state."""
    return [*family_topic_names(names), names.dead_letters]


def every_topic_config(app_id: str, names: TopicSettings, retry: RetrySettings) -> dict[str, dict[str, str]]:
    """Every topic the service uses and its configuration, changelogs compacted: for ``streams topics create``."""
    plain = [*family_topic_names(names), names.user_stats_changes]
    changelogs = {changelog_topic_name(app_id, table): {"cleanup.policy": "compact"} for table in TABLES}
    return {**{name: {} for name in plain}, **retry_topic_configs(names, retry), **changelogs}


@dataclass(frozen=True)
class RetryTopics:
    """Where failed and delayed events wait (one topic per delay tier) and where they end (dead letters).

    Values and keys stay the bytes the event arrived with.
    """

    tiers: dict[float, faust.TopicT]
    dead_letters: faust.TopicT


def declare_retry_topics(app: faust.App, names: TopicSettings, retry: RetrySettings) -> RetryTopics:
    configs = retry_topic_configs(names, retry)

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=names.partitions,
            replicas=names.replication_factor,
            internal=True,
            config=configs[name],
        )

    return RetryTopics(
        tiers={delay: topic(name) for name, delay in tier_topic_names(names, retry).items()},
        dead_letters=topic(names.dead_letters),
    )
