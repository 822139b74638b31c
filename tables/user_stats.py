"""Statistics per user: posts, followers, following and likes received, as RocksDB-backed stream state.

None of the events behind these numbers is keyed by the user it counts for: a post's events are
keyed by the post, a follow by the follower, and "followers" belongs to the user followed. So the
agents that see those events send the steps they cause, keyed by user id, to the
``user-stats-changes`` topic (one message per user per batch), and one agent folds them into the
table from the user's own partition. Who follows whom is kept here too, per follower, so a
repeated follow or an unfollow of someone not followed changes nothing.

The topic is open to any producer, so it is read as bytes: a record that is not a change (bad
JSON, wrong field types, a key that is not UTF-8) goes to the dead-letter topic whole instead of
stopping the agent.

Every step names the source partition and offset of the event behind it, and each user's record
keeps the last offset applied per source partition: a step sent again (its batch was folded
again after a rebalance or a crash) is recognised and skipped, however the events were batched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import faust
from faust.types import TP

from streams import metrics
from streams.agent_loop import UndecodableEventError
from streams.app import app, failures, priorities, settings, topics
from streams.batching import writes_for
from streams.events import FollowChange, UserFollowed
from streams.retry import meant_for, read_headers
from streams.sending import send_for
from streams.topics import FOLLOWS, USER_STATS

AGENT = "user-stats"


class Step(NamedTuple):
    """What one source event adds to one user's statistics."""

    offset: int
    posts: int = 0
    followers: int = 0
    following: int = 0
    likes_received: int = 0


class UserStatsChange(faust.Record, serializer="json", include_metadata=False):
    """Steps for one user from one source partition, in offset order."""

    source: str
    steps: list[list[int]]

    @classmethod
    def of(cls, source: TP, steps: Iterable[Step]) -> UserStatsChange:
        return cls(source=f"{source.topic}:{source.partition}", steps=[list(step) for step in steps])

    @classmethod
    def read(cls, key: bytes | None, payload: bytes | None) -> tuple[str, str, list[Step]]:
        """The user id, source and steps of a record, or UndecodableEventError naming what is wrong."""
        try:
            user_id = (key or b"").decode()
            change = cls.loads(payload or b"", serializer="json")
            steps = [Step(*step) for step in change.steps]
            numbers = [number for step in steps for number in step]
        except Exception as exc:
            raise UndecodableEventError(f"not a user statistics change: {type(exc).__name__}: {exc}") from exc
        if not user_id or not isinstance(change.source, str) or not all(type(n) is int for n in numbers):
            raise UndecodableEventError("not a user statistics change: a user id, a source and integer steps are needed")
        return user_id, change.source, steps


class UserStats(faust.Record, serializer="json", include_metadata=False):
    posts_count: int = 0
    followers: int = 0
    following: int = 0
    likes_received: int = 0
    applied: dict[str, int] = {}

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


class FollowEdge(faust.Record, serializer="json", include_metadata=False):
    """Whether the follower follows, as of the follower partition's ``offset``."""

    following: bool = False
    offset: int = -1


user_stats_changes = app.topic(
    settings.topics.user_stats_changes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.topics.partitions,
    replicas=settings.topics.replication_factor,
    internal=True,
)

user_stats = app.Table(
    USER_STATS,
    default=UserStats,
    key_type=str,
    value_type=UserStats,
    partitions=settings.topics.partitions,
    help="Posts, followers, following and likes received, by user id.",
)

follows = app.Table(
    FOLLOWS,
    default=FollowEdge,
    key_type=str,
    value_type=FollowEdge,
    partitions=settings.topics.partitions,
    help="Whether 'follower>followed' holds; kept in the follower's partition.",
)


async def send_steps(source: TP, steps: dict[str, list[Step]]) -> None:
    """Send each user's steps, keyed by user id, in the transaction of the partition they came from."""
    for user_id, user_steps in steps.items():
        change = UserStatsChange.of(source, user_steps)
        await send_for(app, source, user_stats_changes, user_id.encode(), change.dumps(serializer="json"))


def follow_key(follower: str, followed: str) -> str:
    return f"{follower}>{followed}"


def fold_follows(
    edges: Mapping[str, FollowEdge], events: Iterable[tuple[int, object]]
) -> tuple[dict[str, FollowEdge], dict[str, list[Step]]]:
    """The follow edges these (offset, event) pairs change, in order, and the steps that gives each user."""
    changed: dict[str, FollowEdge] = {}
    steps: dict[str, list[Step]] = {}
    for offset, value in events:
        if not isinstance(value, FollowChange) or value.user_id == value.followed_id:
            continue
        key = follow_key(value.user_id, value.followed_id)
        current = changed.get(key) or edges.get(key) or FollowEdge()
        following = isinstance(value, UserFollowed)
        if offset <= current.offset or current.following == following:
            continue
        changed[key] = FollowEdge(following=following, offset=offset)
        step = 1 if following else -1
        steps.setdefault(value.user_id, []).append(Step(offset, following=step))
        steps.setdefault(value.followed_id, []).append(Step(offset, followers=step))
    return changed, steps


@app.agent(topics.users, isolated_partitions=True)
async def count_follows(stream: faust.StreamT) -> None:
    """Follows and unfollows, per follower partition; the steps go on to each user's own partition.

    The steps are sent before the edges are written, so a batch folded again resends them and the
    user statistics skip what they already applied.
    """
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):  # type: ignore[attr-defined]
        ours = [(event.message.offset, event.value) for event in batch if meant_for(read_headers(event.headers), AGENT)]
        async with priorities.turn("user"):
            changed, steps = fold_follows(follows, ours)
            await send_steps(batch[-1].message.tp, steps)
            with metrics.batch_handled(batch, "follows"), writes_for(batch):
                for key, edge in changed.items():
                    follows[key] = edge


@app.agent(user_stats_changes, isolated_partitions=True)
async def fold_user_stats(stream: faust.StreamT) -> None:
    """Each user's steps arrive on the user's partition and are folded into one write per batch."""
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):  # type: ignore[attr-defined]
        updated: dict[str, UserStats] = {}
        for event in batch:
            try:
                user_id, source, steps = UserStatsChange.read(event.message.key, event.message.value)
            except UndecodableEventError as error:
                await failures.failed(AGENT, event, read_headers(event.headers), error)
                continue
            current = updated.get(user_id) or user_stats[user_id]
            updated[user_id] = current.apply(source, steps)
        with metrics.batch_handled(batch, AGENT), writes_for(batch):
            for user_id, stats in updated.items():
                user_stats[user_id] = stats
