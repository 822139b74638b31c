"""The posts family: a new post is stored, searchable, tagged, counted and announced to followers.

Activity events (views, likes, comments, shares) share the topic; they feed the engagement
statistics in tables/, and this agent has nothing to do for them.
"""

from __future__ import annotations

import re
from functools import partial

import faust
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from streams.agent_loop import Handlers, handle_each
from streams.app import app, database, failures, priorities, sessions, settings, topics
from streams.db.engine import conflict_insert
from streams.db.models import Follower, Notification, Post, PostTag, Tag, User
from streams.db.once import run_once
from streams.errors import EntityNotFoundError
from streams.events import PostCreated
from streams.services.search import index_document

NEW_POST = "new_post"
HASHTAG = re.compile(r"#(\w+)")


def hashtags(content: str) -> list[str]:
    """Lower-cased tags in order of first appearance, each once."""
    return list(dict.fromkeys(tag.lower() for tag in HASHTAG.findall(content)))


async def tag_ids(session: AsyncSession, names: list[str]) -> list[int]:
    """Ids of the named tags, creating those that do not exist yet.

    Posts are handled several at a time, so two may bring a new tag at once: the insert keeps
    whichever came first instead of failing on the unique name.
    """
    if not names:
        return []
    insert = conflict_insert(session, Tag).values([{"name": name} for name in names])
    await session.execute(insert.on_conflict_do_nothing(index_elements=[Tag.name]))
    rows = await session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names)))
    existing = {name: tag_id for name, tag_id in rows}
    return [existing[name] for name in names]


async def create_post(session: AsyncSession, event: PostCreated) -> None:
    author = await session.get(User, event.author_id)
    if author is None:
        raise EntityNotFoundError(f"PostCreated {event.id}: no author {event.author_id!r}")
    if await session.get(Post, event.post_id) is not None:
        return
    session.add(Post(id=event.post_id, author_id=event.author_id, content=event.content, created_at=event.envelope.created_at))
    await session.flush()
    await session.execute(update(User).where(User.id == author.id).values(posts_count=User.posts_count + 1))
    session.add_all(PostTag(post_id=event.post_id, tag_id=tag_id) for tag_id in await tag_ids(session, hashtags(event.content)))
    await index_document(session, "post", event.post_id, event.content)
    followers = await session.scalars(select(Follower.follower_id).where(Follower.followed_id == event.author_id))
    session.add_all(
        Notification(user_id=follower, action=NEW_POST, subject_id=event.post_id, event_id=str(event.id))
        for follower in followers
    )


async def created(event: PostCreated) -> None:
    await run_once(sessions, event, "posts.create_post", lambda session: create_post(session, event))


#: Activity on posts is folded by the state engine; this agent has nothing to do for it.
HANDLERS: Handlers = {PostCreated: created}


@app.agent(topics.posts)
async def process_post_events(stream: faust.StreamT) -> None:
    await handle_each(
        stream, HANDLERS, "posts", "post", failures, partial(priorities.turn, "post"),
        settings.topics.in_flight["post"], database,
    )
