"""The agents' SQLite connections: what SQLAlchemy reads of a statement, in one hand-off to the connection's thread."""

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from streams.db import migrate
from streams.db.engine import async_engine, session_factory
from streams.db.models import EmailLog, ProcessedEvent, User
from streams.db.once import run_once
from streams.db.sqlite_connection import OneHopConnection
from streams.errors import EntityNotFoundError
from streams.events import EmailNotification


def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'streams.db'}"
    migrate.upgrade(url)
    return url


T = TypeVar("T")


def run(scenario_on: Callable[[AsyncEngine], Awaitable[T]], url: str) -> T:
    """``scenario_on(engine)`` on the agents' engine for ``url``, disposed after."""

    async def scenario() -> T:
        engine = async_engine(url)
        try:
            return await scenario_on(engine)
        finally:
            await engine.dispose()

    return asyncio.run(scenario())


def test_rows_counts_and_returned_ids_read_as_the_driver_gives_them(tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> dict[str, object]:
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            session.add_all(User(id=f"u{n}", email=f"u{n}@example.com", username=f"u{n}") for n in range(5))
        async with sessions.begin() as session:
            renamed = await session.execute(update(User).where(User.id.in_(["u1", "u2"])).values(username="renamed"))
            removed = await session.execute(delete(User).where(User.id == "u4"))
            logged = EmailLog(event_id="e1", recipient="u0@example.com", template="welcome", status="sent")
            session.add(logged)
        async with sessions() as session:
            names = (await session.execute(text("SELECT id, username FROM users ORDER BY id"))).all()
            nothing = (await session.execute(text("SELECT id FROM users WHERE id = 'nobody'"))).all()
        return {"renamed": renamed.rowcount, "removed": removed.rowcount, "log_id": logged.id,
                "names": [tuple(row) for row in names], "nothing": nothing}

    outcome = run(scenario, sqlite_url(tmp_path))

    assert outcome == {
        "renamed": 2, "removed": 1, "log_id": 1,
        "names": [("u0", "u0"), ("u1", "renamed"), ("u2", "renamed"), ("u3", "u3")], "nothing": [],
    }


def test_a_transaction_that_fails_after_writing_leaves_nothing_behind(tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> list[str]:
        sessions = session_factory(engine)
        with pytest.raises(RuntimeError):
            async with sessions.begin() as session:
                session.add(User(id="kept-out", email="k@example.com", username="k"))
                await session.flush()
                raise RuntimeError("the handler failed after its write")
        async with sessions.begin() as session:
            session.add(User(id="kept", email="kept@example.com", username="kept"))
        async with sessions() as session:
            return list(await session.scalars(select(User.id)))

    assert run(scenario, sqlite_url(tmp_path)) == ["kept"]


def test_an_email_hands_the_connection_thread_one_call_per_statement_and_a_failing_attempt_no_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A healthy email's transaction: look up processed_events and the user, insert its log row and its
    processed_events row, commit. A failing attempt reads twice and opens no transaction to roll back."""
    calls: Counter[str] = Counter()
    in_thread = OneHopConnection.in_thread

    async def counted(self: OneHopConnection, function: object, *args: object) -> object:
        calls[getattr(function, "__name__", "")] += 1
        return await in_thread(self, function, *args)

    monkeypatch.setattr(OneHopConnection, "in_thread", counted)
    handed_off: dict[str, Counter[str]] = {}

    async def send(session: AsyncSession, event: EmailNotification) -> None:
        user = await session.get(User, event.user_id)
        if user is None:
            raise EntityNotFoundError(event.user_id)
        session.add(EmailLog(event_id=str(event.id), recipient=user.email, template=event.template, status="sent"))

    async def scenario(engine: AsyncEngine) -> int:
        sessions = session_factory(engine)
        async with sessions.begin() as session:
            session.add(User(id="u1", email="u1@example.com", username="u1"))
        for user_id in ("u1", "nobody"):
            event = EmailNotification.new(user_id=user_id, template="newsletter", data={})
            calls.clear()
            try:
                await run_once(sessions, event, "emails.send", lambda session: send(session, event))
            except EntityNotFoundError:
                pass
            handed_off[user_id] = Counter(calls)
        async with sessions() as session:
            return len((await session.scalars(select(ProcessedEvent))).all())

    assert run(scenario, sqlite_url(tmp_path)) == 1
    assert handed_off["u1"] == Counter({"run_statement": 4, "commit": 1})
    assert handed_off["nobody"] == Counter({"run_statement": 2})
