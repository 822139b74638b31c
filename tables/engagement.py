"""Engagement per post: views, likes, comments and shares, as RocksDB-backed stream state.

Post events are keyed by post id, so a post's statistics live in the partition of its events and
no re-keying is needed. A post's record also remembers its author (from PostCreated), which is
how a like becomes "likes received" for a user: the change is sent, re-keyed by the author, to
the user statistics (``tables.user_stats``) in the same transaction as this partition's offsets.
A like that arrives before its post is known is counted for the author once the post arrives.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import faust

from streams.app import app, settings, topics
from streams.batching import writes_for
from streams.events import Event, PostCommented, PostCreated, PostLiked, PostShared, PostViewed
from streams.retry import meant_for, read_headers
from streams.sending import send_for
from tables.user_stats import UserStatsChange, user_stats_changes

AGENT = "engagement"

COUNTERS: dict[type[Event], str] = {PostViewed: "views", PostLiked: "likes", PostCommented: "comments", PostShared: "shares"}


class PostEngagement(faust.Record, serializer="json", include_metadata=False):
    """One post's activity counts and, once PostCreated was seen, its author."""

    author_id: str | None = None
    views: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0

    @property
    def engagement_rate(self) -> float:
        """(likes + comments + shares) / views × 100, to 2 decimals; 0.0 with no views."""
        if not self.views:
            return 0.0
        return round((self.likes + self.comments + self.shares) / self.views * 100, 2)

    def as_json(self, post_id: str) -> dict[str, object]:
        return {
            "post_id": post_id, "author_id": self.author_id, "views": self.views, "likes": self.likes,
            "comments": self.comments, "shares": self.shares, "engagement_rate": self.engagement_rate,
        }


post_engagement = app.Table(
    "post-engagement",
    default=PostEngagement,
    key_type=str,
    value_type=PostEngagement,
    partitions=settings.topics.partitions,
    help="Views, likes, comments, shares and the author of each post, by post id.",
)


def fold(
    posts: Mapping[str, PostEngagement], values: Iterable[object]
) -> tuple[dict[str, PostEngagement], dict[str, UserStatsChange]]:
    """The new records of the posts these events touch, and what they change for their authors."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    authors: dict[str, str] = {}
    for value in values:
        if isinstance(value, PostCreated):
            authors.setdefault(value.post_id, value.author_id)
            counts[value.post_id]
        elif (counter := COUNTERS.get(type(value))) is not None:
            counts[value.post_id][counter] += 1
    updated: dict[str, PostEngagement] = {}
    changes: dict[str, UserStatsChange] = {}
    for post_id, counted in counts.items():
        old = posts.get(post_id) or PostEngagement()
        new = PostEngagement(
            author_id=old.author_id or authors.get(post_id),
            views=old.views + counted["views"],
            likes=old.likes + counted["likes"],
            comments=old.comments + counted["comments"],
            shares=old.shares + counted["shares"],
        )
        updated[post_id] = new
        if new.author_id is None:
            continue
        first_seen = old.author_id is None
        change = changes.setdefault(new.author_id, UserStatsChange())
        change.posts += int(first_seen)
        change.likes_received += new.likes if first_seen else counted["likes"]
    return updated, {user: change for user, change in changes.items() if change.changes_anything()}


@app.agent(topics.posts, isolated_partitions=True)
async def count_engagement(stream: faust.StreamT) -> None:
    """One actor per partition: each batch is folded into one write per post it touches.

    Retries addressed to another agent were counted here the first time and count for nothing now.
    """
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):
        ours = [event.value for event in batch if meant_for(read_headers(event.headers), AGENT)]
        with writes_for(batch):
            updated, changes = fold(post_engagement, ours)
            for post_id, record in updated.items():
                post_engagement[post_id] = record
        source = batch[-1].message.tp
        for user_id, change in changes.items():
            await send_for(app, source, user_stats_changes, user_id, change)
