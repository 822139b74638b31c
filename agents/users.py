"""The users family: profiles, search entries and welcome emails for new users; who follows whom;
followers told of profile changes.

Handlers are plain async functions of a session, their services and the event, so tests can call
them directly; the agent
only decodes, dispatches and keeps bad events from stopping the stream.
"""

from __future__ import annotations

from functools import partial

from datetime import datetime, timezone

import faust
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from streams.agent_loop import Handlers, handle_each
from streams.app import app, database, failures, mailer, priorities, sessions, settings, topics
from streams.db.models import Follower, Notification, User, UserProfile
from streams.db.once import run_once
from streams.errors import EntityNotFoundError
from streams.events import UserCreated, UserFollowed, UserUnfollowed, UserUpdated
from streams.services.email import Mailer, deliver
from streams.services.search import index_document

WELCOME_BIO = "Welcome to our platform!"
PROFILE_UPDATED = "profile_updated"


def searchable_text(*parts: str | None) -> str:
    return " ".join(part for part in parts if part)


async def create_user(session: AsyncSession, event: UserCreated) -> None:
    """Store the user and give them a profile; a user already known (from another event) is updated."""
    user = await session.get(User, event.user_id)
    if user is None:
        session.add(User(id=event.user_id, email=event.email, username=event.username, full_name=event.full_name,
                         created_at=event.envelope.created_at))
    else:
        user.email, user.username, user.full_name = event.email, event.username, event.full_name
    profile = await session.get(UserProfile, event.user_id)
    if profile is None:
        profile = UserProfile(user_id=event.user_id, bio=WELCOME_BIO)
        session.add(profile)
    await index_document(session, "user", event.user_id, searchable_text(event.username, event.full_name, profile.bio))


async def update_user(session: AsyncSession, event: UserUpdated) -> None:
    """Apply the changed fields and notify every follower once."""
    user = await session.get(User, event.user_id)
    if user is None:
        raise EntityNotFoundError(f"UserUpdated {event.id}: no user {event.user_id!r}")
    for field in ("email", "username", "full_name"):
        if getattr(event, field) is not None:
            setattr(user, field, getattr(event, field))
    user.updated_at = datetime.now(timezone.utc)
    profile = await session.get(UserProfile, event.user_id)
    if event.bio is not None:
        if profile is None:
            profile = UserProfile(user_id=event.user_id, bio=event.bio)
            session.add(profile)
        else:
            profile.bio, profile.updated_at = event.bio, user.updated_at
    bio = profile.bio if profile is not None else None
    await index_document(session, "user", event.user_id, searchable_text(user.username, user.full_name, bio))
    followers = await session.scalars(select(Follower.follower_id).where(Follower.followed_id == event.user_id))
    session.add_all(
        Notification(user_id=follower, action=PROFILE_UPDATED, subject_id=event.user_id, event_id=str(event.id))
        for follower in followers
    )


async def follow(session: AsyncSession, event: UserFollowed) -> None:
    """Record that the follower follows the followed user; both must exist, and following oneself is ignored."""
    for user_id in (event.user_id, event.followed_id):
        if await session.get(User, user_id) is None:
            raise EntityNotFoundError(f"UserFollowed {event.id}: no user {user_id!r}")
    if event.user_id != event.followed_id and await session.get(Follower, (event.user_id, event.followed_id)) is None:
        session.add(Follower(follower_id=event.user_id, followed_id=event.followed_id))


async def unfollow(session: AsyncSession, event: UserUnfollowed) -> None:
    await session.execute(
        delete(Follower).where(Follower.follower_id == event.user_id, Follower.followed_id == event.followed_id)
    )


async def send_welcome_email(session: AsyncSession, mailer: Mailer, event: UserCreated) -> None:
    await deliver(session, mailer, event, event.email, "welcome", {"username": event.username})


async def created(event: UserCreated) -> None:
    await run_once(sessions, event, "users.create_user", lambda session: create_user(session, event))
    await run_once(sessions, event, "users.welcome_email", lambda session: send_welcome_email(session, mailer, event))


async def updated(event: UserUpdated) -> None:
    await run_once(sessions, event, "users.update_user", lambda session: update_user(session, event))


async def followed(event: UserFollowed) -> None:
    await run_once(sessions, event, "users.follow", lambda session: follow(session, event))


async def unfollowed(event: UserUnfollowed) -> None:
    await run_once(sessions, event, "users.unfollow", lambda session: unfollow(session, event))


HANDLERS: Handlers = {UserCreated: created, UserUpdated: updated, UserFollowed: followed, UserUnfollowed: unfollowed}


@app.agent(topics.users)
async def process_user_events(stream: faust.StreamT) -> None:
    await handle_each(
        stream, HANDLERS, "users", "user", failures, partial(priorities.turn, "user"),
        settings.topics.in_flight["user"], database,
    )
