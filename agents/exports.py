"""The exports family: a user's data and newest posts written to a file, recorded, and announced."""

from __future__ import annotations

from functools import partial

import asyncio
from pathlib import Path

import faust
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from streams.agent_loop import Handlers, handle_each
from streams.app import app, database, failures, priorities, sessions, settings, topics
from streams.db.models import DataExport as ExportRecord
from streams.db.models import Notification, Post, User, UserProfile
from streams.db.once import run_once
from streams.errors import EntityNotFoundError, PermanentError
from streams.events import DataExport
from streams.services.exports import ExportData, ExportPost, ExportUser, check_format, write_export

EXPORT_COMPLETE = "data_export_complete"


class ExportFilterError(PermanentError):
    """A filter value makes no sense (a negative posts_limit): permanent."""


async def gather(session: AsyncSession, user_id: str, posts_limit: int) -> ExportData:
    user = await session.get(User, user_id)
    if user is None:
        raise EntityNotFoundError(f"no user {user_id!r} to export")
    profile = await session.get(UserProfile, user_id)
    newest = await session.scalars(
        select(Post).where(Post.author_id == user_id).order_by(Post.created_at.desc(), Post.id).limit(posts_limit)
    )
    return ExportData(
        ExportUser(user.id, user.username, user.email, user.full_name, profile.bio if profile else None, user.created_at),
        [ExportPost(post.id, post.content, post.created_at) for post in newest],
    )


async def export_user_data(session: AsyncSession, directory: Path, event: DataExport) -> None:
    check_format(event.format)
    posts_limit = event.filters["posts_limit"]
    if posts_limit < 0:
        raise ExportFilterError(f"posts_limit must not be negative, got {posts_limit}")
    data = await gather(session, event.user_id, posts_limit)
    path = await asyncio.to_thread(write_export, directory, event.id, event.format, data)
    session.add(ExportRecord(event_id=str(event.id), user_id=event.user_id, format=event.format, path=str(path),
                             size_bytes=path.stat().st_size))
    session.add(Notification(user_id=event.user_id, action=EXPORT_COMPLETE, subject_id=path.name, event_id=str(event.id)))


async def export_requested(event: DataExport) -> None:
    await run_once(
        sessions, event, "exports.export_user_data",
        lambda session: export_user_data(session, settings.exports.directory, event),
    )


HANDLERS: Handlers = {DataExport: export_requested}


@app.agent(topics.exports)
async def process_export_events(stream: faust.StreamT) -> None:
    await handle_each(
        stream, HANDLERS, "exports", "export", failures, partial(priorities.turn, "export"),
        settings.topics.in_flight["export"], database,
    )
