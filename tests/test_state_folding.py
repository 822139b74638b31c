"""The pure folds behind the states, without Kafka: counts, and events delivered again."""

from __future__ import annotations

from streams.events import (
    Event, PostCommented, PostCreated, PostLiked, PostShared, PostViewed, UserFollowed, UserUnfollowed,
)
from streams.kafka.partitions import partition_of
from tables.engagement import PostEngagement, fold
from tables.source_events import SourceRecord
from tables.signups import DayCount, count_signups_by_day, sum_partials
from tables.user_stats import FollowEdge, Step, UserStats, fold_follows


def created(post: str, author: str) -> PostCreated:
    return PostCreated.new(post_id=post, author_id=author, content="")


def numbered(*events: Event, start: int = 0) -> list[SourceRecord]:
    """The events as the folds read them from their topic, from offset ``start``."""
    return [(offset, event.schema, event.to_avro()) for offset, event in enumerate(events, start)]


def test_engagement_rate_is_a_percentage_to_two_decimals_and_zero_without_views() -> None:
    assert PostEngagement(views=3, likes=1).engagement_rate == 33.33
    assert PostEngagement(views=0, likes=5).engagement_rate == 0.0
    assert PostEngagement(views=4, likes=2, comments=1, shares=1).engagement_rate == 100.0


def test_a_batch_becomes_one_record_per_post_and_steps_per_author() -> None:
    events = numbered(
        created("p1", "ann"), created("p2", "ann"),
        *(PostViewed.new(post_id="p1", user_id="u") for _ in range(5)),
        PostLiked.new(post_id="p1", user_id="u"), PostLiked.new(post_id="p2", user_id="u"),
        PostCommented.new(post_id="p1", user_id="u", comment_id="c"), PostShared.new(post_id="p2", user_id="u"),
    )
    updated, steps = fold({}, events)
    assert updated == {
        "p1": PostEngagement(author_id="ann", views=5, likes=1, comments=1, offset=9),
        "p2": PostEngagement(author_id="ann", likes=1, shares=1, offset=10),
    }
    assert steps == {"ann": [Step(0, posts=1), Step(1, posts=1), Step(7, likes_received=1), Step(8, likes_received=1)]}


def test_likes_before_the_post_is_known_are_credited_to_its_author_when_it_arrives() -> None:
    updated, steps = fold({}, numbered(PostLiked.new(post_id="p9", user_id="u"), PostLiked.new(post_id="p9", user_id="v")))
    assert updated == {"p9": PostEngagement(likes=2, offset=1)} and steps == {}
    updated, steps = fold(updated, numbered(created("p9", "bob"), start=2))
    assert updated["p9"] == PostEngagement(author_id="bob", likes=2, offset=2)
    assert steps == {"bob": [Step(2, posts=1, likes_received=2)]}


def test_events_delivered_again_change_nothing_however_they_are_batched() -> None:
    events = numbered(created("p1", "ann"), *(PostLiked.new(post_id="p1", user_id="u") for _ in range(4)))
    first, _ = fold({}, events[:3])
    again, steps = fold(first, events[1:])
    assert again["p1"] == PostEngagement(author_id="ann", likes=4, offset=4)
    assert steps == {"ann": [Step(3, likes_received=1), Step(4, likes_received=1)]}


def test_a_repeated_post_created_counts_the_post_once() -> None:
    posts, _ = fold({}, numbered(created("p1", "ann")))
    _, steps = fold(posts, numbered(created("p1", "ann"), start=1))
    assert steps == {}


def test_follows_count_once_and_unfollows_only_undo_real_follows() -> None:
    events = numbered(
        UserFollowed.new(user_id="bob", followed_id="ann"),
        UserFollowed.new(user_id="bob", followed_id="ann"),
        UserUnfollowed.new(user_id="cat", followed_id="ann"),
        UserFollowed.new(user_id="ann", followed_id="ann"),
        UserFollowed.new(user_id="cat", followed_id="ann"),
        UserUnfollowed.new(user_id="cat", followed_id="ann"),
    )
    edges, steps = fold_follows({}, events)
    assert edges == {"bob>ann": FollowEdge(following=True, offset=0), "cat>ann": FollowEdge(following=False, offset=5)}
    assert steps == {
        "bob": [Step(0, following=1)], "ann": [Step(0, followers=1), Step(4, followers=1), Step(5, followers=-1)],
        "cat": [Step(4, following=1), Step(5, following=-1)],
    }
    again, steps = fold_follows(edges, events)
    assert again == {} and steps == {}


def test_user_statistics_skip_steps_already_applied_from_the_same_source() -> None:
    stats = UserStats().apply("posts:0", [Step(3, posts=1), Step(5, likes_received=2)])
    stats = stats.apply("posts:0", [Step(5, likes_received=2), Step(6, likes_received=1)])
    stats = stats.apply("users:0", [Step(1, followers=1)])
    assert (stats.posts_count, stats.likes_received, stats.followers) == (1, 3, 1)
    assert stats.applied == {"posts:0": 6, "users:0": 1}


def test_signups_are_counted_per_day_once_per_offset() -> None:
    signups = [(0, "2026-11-20"), (1, "2026-11-20"), (2, "2026-11-21")]
    partials = count_signups_by_day({}, signups, partition=3)
    assert partials == {"2026-11-20/3": DayCount(count=2, offset=1), "2026-11-21/3": DayCount(count=1, offset=2)}
    assert count_signups_by_day(partials, signups, partition=3) == {}
    assert count_signups_by_day(partials, [(1, "2026-11-20"), (5, "2026-11-20")], partition=3) == {
        "2026-11-20/3": DayCount(count=3, offset=5)}
    assert sum_partials([*partials.items(), ("2026-11-20/1", DayCount(count=5, offset=9))]) == {"2026-11-20": 7, "2026-11-21": 1}


def test_a_day_count_reads_back_what_it_writes() -> None:
    assert DayCount.loads(DayCount(count=7, offset=41).dumps()) == DayCount(count=7, offset=41)
    assert DayCount.loads(b'{"count": 2, "offset": 9}') == DayCount(2, 9)


def test_keys_spread_over_every_partition() -> None:
    assert {partition_of(f"k{n}", 4) for n in range(100)} == {0, 1, 2, 3}


def test_every_value_reads_back_what_it_writes() -> None:
    record = PostEngagement(author_id="ann", views=3, likes=1, offset=7)
    assert PostEngagement.loads(record.dumps()) == record
    stats = UserStats().apply("posts:0", [Step(3, posts=1)])
    assert UserStats.loads(stats.dumps()) == stats
    assert FollowEdge.loads(FollowEdge(following=True, offset=4).dumps()) == FollowEdge(following=True, offset=4)
