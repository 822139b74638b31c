"""The pure folds behind the engagement and user statistics tables, without Kafka."""

from __future__ import annotations

from streams.events import PostCommented, PostCreated, PostLiked, PostShared, PostViewed, UserFollowed, UserUnfollowed
from tables.cluster import partition_of
from tables.engagement import PostEngagement, fold
from tables.user_stats import UserStats, UserStatsChange, fold_follows


def created(post: str, author: str) -> PostCreated:
    return PostCreated.new(post_id=post, author_id=author, content="")


def test_engagement_rate_is_a_percentage_to_two_decimals_and_zero_without_views() -> None:
    assert PostEngagement(views=3, likes=1).engagement_rate == 33.33
    assert PostEngagement(views=0, likes=5).engagement_rate == 0.0
    assert PostEngagement(views=4, likes=2, comments=1, shares=1).engagement_rate == 100.0


def test_a_batch_becomes_one_record_per_post_and_one_change_per_author() -> None:
    events = [
        created("p1", "ann"), created("p2", "ann"),
        *(PostViewed.new(post_id="p1", user_id="u") for _ in range(5)),
        PostLiked.new(post_id="p1", user_id="u"), PostLiked.new(post_id="p2", user_id="u"),
        PostCommented.new(post_id="p1", user_id="u", comment_id="c"), PostShared.new(post_id="p2", user_id="u"),
    ]
    updated, changes = fold({}, events)
    assert updated == {
        "p1": PostEngagement(author_id="ann", views=5, likes=1, comments=1),
        "p2": PostEngagement(author_id="ann", likes=1, shares=1),
    }
    assert changes == {"ann": UserStatsChange(posts=2, likes_received=2)}


def test_likes_before_the_post_is_known_are_credited_to_its_author_when_it_arrives() -> None:
    updated, changes = fold({}, [PostLiked.new(post_id="p9", user_id="u")] * 2)
    assert updated == {"p9": PostEngagement(likes=2)} and changes == {}
    updated, changes = fold(updated, [created("p9", "bob")])
    assert updated["p9"] == PostEngagement(author_id="bob", likes=2)
    assert changes == {"bob": UserStatsChange(posts=1, likes_received=2)}


def test_a_repeated_post_created_counts_the_post_once() -> None:
    posts, _ = fold({}, [created("p1", "ann")])
    _, changes = fold(posts, [created("p1", "ann")])
    assert changes == {}


def test_follows_count_once_and_unfollows_only_undo_real_follows() -> None:
    events = [
        UserFollowed.new(user_id="bob", followed_id="ann"),
        UserFollowed.new(user_id="bob", followed_id="ann"),
        UserUnfollowed.new(user_id="cat", followed_id="ann"),
        UserFollowed.new(user_id="ann", followed_id="ann"),
        UserFollowed.new(user_id="cat", followed_id="ann"),
        UserUnfollowed.new(user_id="cat", followed_id="ann"),
    ]
    edges, changes = fold_follows({}, events)
    assert edges == {"bob>ann": True, "cat>ann": False}
    assert changes == {"bob": UserStatsChange(following=1), "ann": UserStatsChange(followers=1)}
    edges, changes = fold_follows({"bob>ann": True}, [UserUnfollowed.new(user_id="bob", followed_id="ann")])
    assert edges == {"bob>ann": False}
    assert changes == {"bob": UserStatsChange(following=-1), "ann": UserStatsChange(followers=-1)}


def test_user_stats_add_up_changes() -> None:
    stats = UserStats(posts_count=1, followers=2).plus(UserStatsChange(posts=1, followers=-1, likes_received=3))
    assert stats == UserStats(posts_count=2, followers=1, likes_received=3)


def test_keys_spread_over_every_partition() -> None:
    assert {partition_of(f"k{n}", 4) for n in range(100)} == {0, 1, 2, 3}
