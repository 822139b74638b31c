"""Engagement per post: views, likes, comments and shares, as RocksDB-backed stream state.

Post events are keyed by post id, so a post's statistics live in the partition of its events and
no re-keying is needed. A post's record also remembers its author (from PostCreated), which is
how a like becomes "likes received" for a user: the change is sent, re-keyed by the author, to
the user statistics (``tables.user_stats``). A like that arrives before its post is known is
counted for the author once the post arrives.

Each record remembers the last source offset folded into it, so an event delivered again is not
counted twice, and every change sent on names the offset that caused it, so the user statistics
can tell a change sent again from a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import faust

from streams import metrics
from streams.app import app, priorities, settings, topics
from streams.batching import writes_for
from streams.events import Event, PostCommented, PostCreated, PostLiked, PostShared, PostViewed
from streams.retry import meant_for, read_headers
from streams.topics import POST_ENGAGEMENT
from tables.user_stats import Step, send_steps

AGENT = "engagement"

COUNTERS: dict[type[Event], str] = {PostViewed: "views", PostLiked: "likes", PostCommented: "comments", PostShared: "shares"}


class PostEngagement(faust.Record, serializer="json", include_metadata=False):
    """One post's activity counts, its author once PostCreated was seen, and the last offset folded in."""

    author_id: str | None = None
    views: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    offset: int = -1

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
    POST_ENGAGEMENT,
    default=PostEngagement,
    key_type=str,
    value_type=PostEngagement,
    partitions=settings.topics.partitions,
    help="Views, likes, comments, shares and the author of each post, by post id.",
)


def copy_of(record: PostEngagement) -> PostEngagement:
    return PostEngagement(
        author_id=record.author_id, views=record.views, likes=record.likes, comments=record.comments,
        shares=record.shares, offset=record.offset,
    )


def fold(
    posts: Mapping[str, PostEngagement], events: Iterable[tuple[int, Any]]
) -> tuple[dict[str, PostEngagement], dict[str, list[Step]]]:
    """The new records of the posts these (offset, event) pairs touch, and each author's steps, in offset order;
    events other than a post's creation and its activities are passed over."""
    updated: dict[str, PostEngagement] = {}
    steps: dict[str, list[Step]] = {}
    for offset, value in events:
        counter = COUNTERS.get(type(value))
        if counter is None and not isinstance(value, PostCreated):
            continue
        new = updated.get(value.post_id)
        if new is None:
            new = copy_of(posts.get(value.post_id) or PostEngagement())
        if offset <= new.offset:
            continue
        new.offset = offset
        if counter is not None:
            setattr(new, counter, getattr(new, counter) + 1)
            if counter == "likes" and new.author_id is not None:
                steps.setdefault(new.author_id, []).append(Step(offset, likes_received=1))
        elif new.author_id is None:
            new.author_id = value.author_id
            steps.setdefault(new.author_id, []).append(Step(offset, posts=1, likes_received=new.likes))
        updated[value.post_id] = new
    return updated, steps


@app.agent(topics.posts, isolated_partitions=True)
async def count_engagement(stream: faust.StreamT) -> None:
    """One actor per partition: each batch is folded into one write per post it touches.

    The changes for authors are sent before the posts are written: if the worker stops in
    between, the batch is folded again, and the user statistics skip the steps they already have.
    Retries addressed to another agent were counted here the first time and count for nothing now.
    """
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):  # type: ignore[attr-defined]
        ours = [(event.message.offset, event.value) for event in batch if meant_for(read_headers(event.headers), AGENT)]
        async with priorities.turn("post"):
            updated, steps = fold(post_engagement, ours)
            await send_steps(batch[-1].message.tp, steps)
            with metrics.batch_handled(batch, AGENT), writes_for(batch):
                for post_id, record in updated.items():
                    post_engagement[post_id] = record
