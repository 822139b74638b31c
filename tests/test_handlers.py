"""Handlers called directly, without Kafka: a session, their services, an event."""

import asyncio

import pytest
from sqlalchemy import select

from agents.posts import create_post, hashtags
from agents.users import create_user, update_user
from streams.db.engine import async_engine, session_factory
from streams.db.models import Notification, PostTag, Tag, User, UserProfile
from streams.errors import EntityNotFoundError
from streams.events import PostCreated, UserCreated, UserUpdated
from tests.databases import seed_users


def test_hashtags_are_lower_cased_and_each_kept_once_in_order() -> None:
    assert hashtags("#Kafka rocks, #faust too. #KAFKA again #stream_processing #") == ["kafka", "faust", "stream_processing"]
    assert hashtags("no tags here, just a # sign") == []


def run(url: str, scenario):
    async def main():
        engine = async_engine(url)
        try:
            return await scenario(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_two_posts_share_one_tag_row(database_url: str) -> None:
    seed_users(database_url, "alice")

    async def scenario(sessions):
        for n in (1, 2):
            async with sessions.begin() as session:
                await create_post(session, PostCreated.new(post_id=f"p{n}", author_id="alice", content=f"#Garden {n}"))
        async with sessions() as session:
            return (await session.scalars(select(Tag.name))).all(), len((await session.scalars(select(PostTag))).all())

    assert run(database_url, scenario) == (["garden"], 2)


def test_a_user_created_twice_by_different_events_keeps_one_profile(database_url: str) -> None:
    seed_users(database_url)

    async def scenario(sessions):
        for email in ("first@example.com", "second@example.com"):
            async with sessions.begin() as session:
                await create_user(session, UserCreated.new(user_id="u1", email=email, username="u1"))
        async with sessions() as session:
            profiles = (await session.scalars(select(UserProfile))).all()
            return (await session.get(User, "u1")).email, len(profiles)

    assert run(database_url, scenario) == ("second@example.com", 1)


def test_updating_a_missing_user_raises_and_notifies_nobody(database_url: str) -> None:
    seed_users(database_url, "bob")

    async def scenario(sessions):
        with pytest.raises(EntityNotFoundError, match="no user 'ghost'"):
            async with sessions.begin() as session:
                await update_user(session, UserUpdated.new(user_id="ghost", bio="boo"))
        async with sessions() as session:
            return (await session.scalars(select(Notification))).all()

    assert run(database_url, scenario) == []
