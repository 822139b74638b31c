"""Statistics per user: posts, followers, following and likes received, as RocksDB-backed stream state.

None of the events behind these numbers is keyed by the user it counts for: a post's events are
keyed by the post, a follow by the follower, and "followers" belongs to the user followed. So the
folds that see those events send the steps they cause, keyed by user id, to the
``user-stats-changes`` topic (one message per user per batch, in the transaction of the batch's
state), and one fold folds them into the statistics from the user's own partition. Who follows whom is kept here too, per follower, so a
repeated follow or an unfollow of someone not followed changes nothing.

The topic is open to any producer, so it is read as bytes: a record that is not a change (bad
JSON, wrong field types, a key that is not UTF-8) goes to the dead-letter topic whole instead of
stopping the fold.

Every step names the source partition and offset of the event behind it, and each user's record
keeps the last offset applied per source partition: a step sent again is recognised and skipped,
however the events were batched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, cast

from confluent_kafka import Message

from streams import metrics
from streams.agent_loop import UndecodableEventError
from streams.app import settings
from streams.events import UserFollowed, UserUnfollowed
from streams.state.engine import State
from streams.state.outputs import Outputs
from streams.topics import FOLLOWS, USER_STATS, changelog_topic_name
from tables.source_events import SourceRecord, records_for

AGENT = "user-stats"


class Step(NamedTuple):
    """What one source event adds to one user's statistics."""

    offset: int
    posts: int = 0
    followers: int = 0
    following: int = 0
    likes_received: int = 0


@dataclass(frozen=True)
class UserStatsChange:
    """Steps for one user from one source partition (``topic:partition``), in offset order."""

    source: str
    steps: list[list[int]]

    @classmethod
    def of(cls, topic: str, partition: int, steps: Iterable[Step]) -> UserStatsChange:
        return cls(source=f"{topic}:{partition}", steps=[list(step) for step in steps])

    def dumps(self) -> bytes:
        return json.dumps({"source": self.source, "steps": self.steps}, separators=(",", ":")).encode()

    @classmethod
    def read(cls, key: bytes | None, payload: bytes | None) -> tuple[str, str, list[Step]]:
        """The user id, source and steps of a record, or UndecodableEventError naming what is wrong."""
        try:
            user_id = (key or b"").decode()
            change = json.loads(payload or b"")
            source = change["source"]
            steps = [Step(*step) for step in change["steps"]]
            numbers = [number for step in steps for number in step]
        except Exception as exc:
            raise UndecodableEventError(f"not a user statistics change: {type(exc).__name__}: {exc}") from exc
        if not user_id or not isinstance(source, str) or not all(type(n) is int for n in numbers):
            raise UndecodableEventError("not a user statistics change: a user id, a source and integer steps are needed")
        return user_id, source, steps


@dataclass
class UserStats:
    posts_count: int = 0
    followers: int = 0
    following: int = 0
    likes_received: int = 0
    applied: dict[str, int] = field(default_factory=dict)

    def apply(self, source: str, steps: Iterable[Step]) -> UserStats:
        """These statistics with every step past the last offset applied from ``source``."""
        new = UserStats(
            posts_count=self.posts_count, followers=self.followers, following=self.following,
            likes_received=self.likes_received, applied=dict(self.applied),
        )
        for step in steps:
            if step.offset <= new.applied.get(source, -1):
                continue
            new.posts_count += step.posts
            new.followers += step.followers
            new.following += step.following
            new.likes_received += step.likes_received
            new.applied[source] = step.offset
        return new

    def as_json(self, user_id: str) -> dict[str, object]:
        return {
            "user_id": user_id, "posts_count": self.posts_count, "followers": self.followers,
            "following": self.following, "likes_received": self.likes_received,
        }

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> UserStats:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class FollowEdge:
    """Whether the follower follows, as of the follower partition's ``offset``."""

    following: bool = False
    offset: int = -1

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> FollowEdge:
        return cls(**json.loads(raw))


def send_steps(outputs: Outputs, topic: str, partition: int, steps: dict[str, list[Step]]) -> None:
    """Send each user's steps, keyed by user id, with the state of the partition they came from."""
    for user_id, user_steps in steps.items():
        outputs.send(settings.topics.user_stats_changes, user_id.encode(), UserStatsChange.of(topic, partition, user_steps).dumps())


FOLLOW_CHANGES = frozenset({UserFollowed.schema, UserUnfollowed.schema})


def follow_key(follower: str, followed: str) -> str:
    return f"{follower}>{followed}"


def fold_follows(
    edges: Mapping[str, FollowEdge], events: Iterable[SourceRecord]
) -> tuple[dict[str, FollowEdge], dict[str, list[Step]]]:
    """The follow edges these source records change, in order, and the steps that gives each user."""
    changed: dict[str, FollowEdge] = {}
    steps: dict[str, list[Step]] = {}
    for offset, kind, record in events:
        if kind not in FOLLOW_CHANGES:
            continue
        follower, followed = record["user_id"], record["followed_id"]
        if follower == followed:
            continue
        key = follow_key(follower, followed)
        current = changed.get(key) or edges.get(key) or FollowEdge()
        following = kind == UserFollowed.schema
        if offset <= current.offset or current.following == following:
            continue
        changed[key] = FollowEdge(following=following, offset=offset)
        step = 1 if following else -1
        steps.setdefault(follower, []).append(Step(offset, following=step))
        steps.setdefault(followed, []).append(Step(offset, followers=step))
    return changed, steps



def fold_follow_events(
    edges: Mapping[str, FollowEdge], partition: int, messages: Sequence[Message], outputs: Outputs,
) -> dict[str, FollowEdge]:
    """The engine's fold of user-events: follows and unfollows, per follower partition, their steps sent on.

    Other events, undecodable ones (the users agent dead-letters those) and retries addressed to
    another agent are passed over.
    """
    with metrics.batch_folded(cast(str, messages[-1].topic()), "follows", len(messages)):
        changed, steps = fold_follows(edges, records_for(messages, AGENT))
        send_steps(outputs, cast(str, messages[-1].topic()), partition, steps)
    return changed


def fold_changes(
    stats: Mapping[str, UserStats], partition: int, messages: Sequence[Message], outputs: Outputs,
) -> dict[str, UserStats]:
    """The engine's fold of user-stats-changes: each user's steps, from the user's own partition; a record that is
    not a change is a dead letter."""
    updated: dict[str, UserStats] = {}
    with metrics.batch_folded(cast(str, messages[-1].topic()), AGENT, len(messages)):
        for message in messages:
            try:
                user_id, source, steps = UserStatsChange.read(message.key(), message.value())
            except UndecodableEventError as error:
                outputs.dead_letter(message, AGENT, error)
                continue
            current = updated.get(user_id) or stats.get(user_id) or UserStats()
            updated[user_id] = current.apply(source, steps)
    return updated


follows: State[FollowEdge] = State(
    FOLLOWS, settings.topics.user_events, changelog_topic_name(settings.kafka.group_id, FOLLOWS),
    fold_follow_events, FollowEdge.dumps, FollowEdge.loads,
)

user_stats: State[UserStats] = State(
    USER_STATS, settings.topics.user_stats_changes, changelog_topic_name(settings.kafka.group_id, USER_STATS),
    fold_changes, UserStats.dumps, UserStats.loads,
)
