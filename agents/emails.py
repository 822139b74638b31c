"""The emails family: templated emails to users, sent over SMTP and logged in email_log."""

from __future__ import annotations

from functools import partial

import faust
from sqlalchemy.ext.asyncio import AsyncSession

from streams.agent_loop import Handlers, handle_each
from streams.app import app, database, failures, mailer, priorities, sessions, settings, topics
from streams.db.models import User
from streams.db.once import run_once
from streams.errors import EntityNotFoundError
from streams.events import EmailNotification
from streams.services.email import Mailer, deliver


async def send_notification(session: AsyncSession, mailer: Mailer, event: EmailNotification) -> None:
    user = await session.get(User, event.user_id)
    if user is None:
        raise EntityNotFoundError(f"EmailNotification {event.id}: no user {event.user_id!r}")
    await deliver(session, mailer, event, user.email, event.template, {"username": user.username, **event.data})


async def notification(event: EmailNotification) -> None:
    await run_once(sessions, event, "emails.send", lambda session: send_notification(session, mailer, event))


HANDLERS: Handlers = {EmailNotification: notification}


@app.agent(topics.emails)
async def process_email_events(stream: faust.StreamT) -> None:
    await handle_each(
        stream, HANDLERS, "emails", "email", failures, partial(priorities.turn, "email"),
        settings.topics.in_flight["email"], database,
    )
