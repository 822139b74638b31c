"""Exactly-once side effects on top of at-least-once delivery.

A handler's database work and the (event, handler) row in processed_events commit in one
transaction, so a redelivered event finds its row and does nothing. Two deliveries racing each
other both try to insert the row; the loser's transaction fails on the primary key and rolls
back whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streams.db.models import ProcessedEvent
from streams.events import Event

SideEffects = Callable[[AsyncSession], Awaitable[None]]


async def already_processed(sessions: async_sessionmaker[AsyncSession], event: Event, handler: str) -> bool:
    async with sessions() as session:
        return await session.get(ProcessedEvent, (str(event.id), handler)) is not None


async def run_once(
    sessions: async_sessionmaker[AsyncSession], event: Event, handler: str, side_effects: SideEffects
) -> bool:
    """Apply ``side_effects`` unless this handler already did for this event; True if they ran now."""
    try:
        async with sessions.begin() as session:
            if await session.get(ProcessedEvent, (str(event.id), handler)) is not None:
                return False
            await side_effects(session)
            session.add(ProcessedEvent(event_id=str(event.id), handler=handler, event_type=type(event).__name__))
        return True
    except IntegrityError:
        if await already_processed(sessions, event, handler):
            return False
        raise
