"""Engagement per post: views, likes, comments and shares, as RocksDB-backed stream state.

Post events are keyed by post id, so a post's statistics live in the partition of its events and
no re-keying is needed. A post's record also remembers its author (from PostCreated), which is
how a like becomes "likes received" for a user: the change is sent, re-keyed by the author, to
the user statistics (``tables.user_stats``), in the transaction that commits the post's record.
A like that arrives before its post is known is counted for the author once the post arrives.

Each record remembers the last source offset folded into it, and every change sent on names the
offset that caused it, so the user statistics can tell a change sent again from a new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import cast

from confluent_kafka import Message

from streams import metrics
from streams.app import settings
from streams.events import PostCommented, PostCreated, PostLiked, PostShared, PostViewed
from streams.state.engine import State
from streams.state.outputs import Outputs
from streams.topics import POST_ENGAGEMENT, changelog_topic_name
from tables.source_events import SourceRecord, records_for
from tables.user_stats import Step, send_steps

AGENT = "engagement"

#: The counter each activity adds to, by the full name of its schema.
COUNTERS: dict[str, str] = {
    PostViewed.schema: "views", PostLiked.schema: "likes", PostCommented.schema: "comments", PostShared.schema: "shares",
}


@dataclass
class PostEngagement:
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

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> PostEngagement:
        return cls(**json.loads(raw))


def fold(
    posts: Mapping[str, PostEngagement], events: Iterable[SourceRecord]
) -> tuple[dict[str, PostEngagement], dict[str, list[Step]]]:
    """The new records of the posts these source records touch, and each author's steps, in offset order;
    events other than a post's creation and its activities are passed over."""
    updated: dict[str, PostEngagement] = {}
    steps: dict[str, list[Step]] = {}
    for offset, kind, record in events:
        counter = COUNTERS.get(kind)
        if counter is None and kind != PostCreated.schema:
            continue
        post_id = record["post_id"]
        new = updated.get(post_id)
        if new is None:
            new = replace(posts.get(post_id) or PostEngagement())
        if offset <= new.offset:
            continue
        new.offset = offset
        if counter is not None:
            setattr(new, counter, getattr(new, counter) + 1)
            if counter == "likes" and new.author_id is not None:
                steps.setdefault(new.author_id, []).append(Step(offset, likes_received=1))
        elif new.author_id is None:
            new.author_id = record["author_id"]
            steps.setdefault(new.author_id, []).append(Step(offset, posts=1, likes_received=new.likes))
        updated[post_id] = new
    return updated, steps


def fold_engagement(
    posts: Mapping[str, PostEngagement], partition: int, messages: Sequence[Message], outputs: Outputs,
) -> dict[str, PostEngagement]:
    """The engine's fold: decode, fold, and send each author's steps on.

    Undecodable events are passed over (the posts agent dead-letters them), and so are retries
    addressed to another agent: this fold counted them the first time.
    """
    with metrics.batch_folded(cast(str, messages[-1].topic()), AGENT, len(messages)):
        updated, steps = fold(posts, records_for(messages, AGENT))
        send_steps(outputs, cast(str, messages[-1].topic()), partition, steps)
    return updated


#: Engagement rates and view counts fit in 8 bytes each; a rank subtracts them from the largest.
LARGEST = 2**64 - 1


def top_first(post_id: str, raw: bytes) -> bytes:
    """The order /posts/top reads: engagement rate, then views, then post id, each highest first."""
    record = PostEngagement.loads(raw)
    rate = round(record.engagement_rate * 100)
    return (
        (LARGEST - rate).to_bytes(8, "big") + (LARGEST - record.views).to_bytes(8, "big")
        + bytes(255 - byte for byte in post_id.encode()) + b"\xff"
    )


post_engagement: State[PostEngagement] = State(
    POST_ENGAGEMENT, settings.topics.post_events, changelog_topic_name(settings.kafka.group_id, POST_ENGAGEMENT),
    fold_engagement, PostEngagement.dumps, PostEngagement.loads, top_first,
)
