"""Statistics per user: posts, followers, following and likes received, as RocksDB-backed stream state.

None of the events behind these numbers is keyed by the user it counts for: a post's events are
keyed by the post, a follow by the follower, and "followers" belongs to the user followed. So the
agents that see those events send small per-user changes, keyed by user id, to the
``user-stats-changes`` topic (one change per user per batch), and one agent folds them into the
table from the user's own partition. Who follows whom is kept here too, per follower, so a
repeated follow or an unfollow of someone not followed changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import faust

from streams.app import app, settings, topics
from streams.batching import writes_for
from streams.events import UserFollowed, UserUnfollowed
from streams.retry import meant_for, read_headers
from streams.sending import send_for

AGENT = "user-stats"


class UserStatsChange(faust.Record, serializer="json", include_metadata=False):
    """What some events add to one user's statistics."""

    posts: int = 0
    followers: int = 0
    following: int = 0
    likes_received: int = 0

    def changes_anything(self) -> bool:
        return any((self.posts, self.followers, self.following, self.likes_received))


class UserStats(faust.Record, serializer="json", include_metadata=False):
    posts_count: int = 0
    followers: int = 0
    following: int = 0
    likes_received: int = 0

    def plus(self, change: UserStatsChange) -> UserStats:
        return UserStats(
            posts_count=self.posts_count + change.posts,
            followers=self.followers + change.followers,
            following=self.following + change.following,
            likes_received=self.likes_received + change.likes_received,
        )

    def as_json(self, user_id: str) -> dict[str, object]:
        return {
            "user_id": user_id, "posts_count": self.posts_count, "followers": self.followers,
            "following": self.following, "likes_received": self.likes_received,
        }


user_stats_changes = app.topic(
    settings.topics.user_stats_changes,
    key_type=str,
    value_type=UserStatsChange,
    partitions=settings.topics.partitions,
    replicas=settings.topics.replication_factor,
    internal=True,
)

user_stats = app.Table(
    "user-stats",
    default=UserStats,
    key_type=str,
    value_type=UserStats,
    partitions=settings.topics.partitions,
    help="Posts, followers, following and likes received, by user id.",
)

follows = app.Table(
    "follows",
    default=int,
    key_type=str,
    value_type=int,
    partitions=settings.topics.partitions,
    help="'follower>followed' is 1 while the follower follows; kept in the follower's partition.",
)


def follow_key(follower: str, followed: str) -> str:
    return f"{follower}>{followed}"


def fold_follows(
    edges: Mapping[str, int], values: Iterable[object]
) -> tuple[dict[str, bool], dict[str, UserStatsChange]]:
    """The follow edges these events change, in order, and what that does to each user's counts."""
    changed: dict[str, bool] = {}
    changes: dict[str, UserStatsChange] = {}
    for value in values:
        if not isinstance(value, UserFollowed | UserUnfollowed) or value.user_id == value.followed_id:
            continue
        key = follow_key(value.user_id, value.followed_id)
        following = isinstance(value, UserFollowed)
        if changed.get(key, bool(edges.get(key, 0))) == following:
            continue
        changed[key] = following
        step = 1 if following else -1
        changes.setdefault(value.user_id, UserStatsChange()).following += step
        changes.setdefault(value.followed_id, UserStatsChange()).followers += step
    return changed, {user: change for user, change in changes.items() if change.changes_anything()}


@app.agent(topics.users, isolated_partitions=True)
async def count_follows(stream: faust.StreamT) -> None:
    """Follows and unfollows, per follower partition; the counts go on to each user's own partition."""
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):
        ours = [event.value for event in batch if meant_for(read_headers(event.headers), AGENT)]
        with writes_for(batch):
            changed, changes = fold_follows(follows, ours)
            for key, following in changed.items():
                if following:
                    follows[key] = 1
                else:
                    del follows[key]
        source = batch[-1].message.tp
        for user_id, change in changes.items():
            await send_for(app, source, user_stats_changes, user_id, change)


@app.agent(user_stats_changes, isolated_partitions=True)
async def fold_user_stats(stream: faust.StreamT) -> None:
    """Each user's changes arrive on the user's partition and are folded into one write per batch."""
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):
        totals: dict[str, UserStatsChange] = {}
        for event in batch:
            change, total = event.value, totals.setdefault(event.key, UserStatsChange())
            total.posts += change.posts
            total.followers += change.followers
            total.following += change.following
            total.likes_received += change.likes_received
        with writes_for(batch):
            for user_id, total in totals.items():
                user_stats[user_id] = user_stats[user_id].plus(total)
