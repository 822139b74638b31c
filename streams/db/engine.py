"""Engines for the one configured database URL: async for the agents, sync for migrations.

A URL names only the database (``sqlite:///path`` or ``postgresql://user@host/db``); the
drivers are chosen here, so settings never carry them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from streams.db.sqlite_connection import connector

#: Per backend, the synchronous driver (migrations, the CLI) and the agents' async one. On PostgreSQL the
#: agents use asyncpg: psycopg's async mode costs the event loop a fifth more per transaction, and it drops
#: every prepared statement of a connection at each ROLLBACK, which every failing attempt ends with
#: (``bench.db_drivers``).
DRIVERS = {"sqlite": ("pysqlite", "aiosqlite"), "postgresql": ("psycopg", "asyncpg")}


def sqlite_file(url: URL) -> str | None:
    """The file a SQLite URL names; None for an in-memory database or another backend."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return url.database
    return None


def with_driver(url: str, asynchronous: bool) -> URL:
    """The URL with this service's driver for its backend; a SQLite file's folder is created if missing."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in DRIVERS:
        raise ValueError(f"unsupported database {backend!r}; use sqlite:///path or postgresql://...")
    if database_file := sqlite_file(parsed):
        Path(database_file).parent.mkdir(parents=True, exist_ok=True)
    sync_driver, async_driver = DRIVERS[backend]
    return parsed.set(drivername=f"{backend}+{async_driver if asynchronous else sync_driver}")


def configure_sqlite(engine: Engine) -> None:
    """SQLite ignores foreign keys unless each connection asks for them, and its default rollback
    journal makes every reader wait for the worker's writes; write-ahead logging lets the web view
    and the CLI read while agents write, and commits cost one log append instead of two file syncs."""
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI objects are untyped
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
            dbapi_connection.execute("PRAGMA journal_mode=WAL")


def sync_engine(url: str) -> Engine:
    engine = create_engine(with_driver(url, asynchronous=False))
    configure_sqlite(engine)
    return engine


def replace_closed_connections(engine: Engine) -> None:
    """A PostgreSQL connection the server closed (a restart, an idle timeout) is replaced as it is taken from
    the pool. asyncpg marks a connection closed as soon as the server hangs up, so the check costs no round
    trip, where SQLAlchemy's pre-ping costs three on every transaction (its asyncpg adapter wraps the ping in
    BEGIN and ROLLBACK): a tenth of a healthy email's event-loop CPU, a fifth of a failing attempt's
    (``bench.db_drivers``).
    A connection that breaks unnoticed fails its first query as an outage: SQLAlchemy then retires every
    connection the pool held, and the outage gate (``streams.db.outage``) runs the event again."""
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "checkout")
        def on_checkout(_dbapi_connection, record, _proxy) -> None:  # noqa: ANN001 - pool objects are untyped
            if record.driver_connection.is_closed():
                raise DisconnectionError("the server closed this pooled connection")


def async_engine(url: str, connections: int = 5) -> AsyncEngine:
    """``connections`` kept open: one for each handler that may run at once (a failed email's log takes one more,
    from the pool's overflow). A SQLite file's connections hand each statement to their thread once
    (``streams.db.sqlite_connection``)."""
    parsed = with_driver(url, asynchronous=True)
    options: dict[str, object] = {"pool_size": connections}
    if database_file := sqlite_file(parsed):
        options["async_creator"] = connector(database_file)
    engine = create_async_engine(parsed, **options)
    configure_sqlite(engine.sync_engine)
    replace_closed_connections(engine.sync_engine)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


#: INSERT statements that can say what to do ON CONFLICT, for each database the service runs on.
CONFLICT_INSERTS: dict[str, Callable[[Any], postgresql.Insert | sqlite.Insert]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert,
}


def dialect(session: AsyncSession) -> str:
    """The session's database, 'sqlite' or 'postgresql', for the statements that differ between them."""
    return session.get_bind().dialect.name


def conflict_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` in the session's dialect, which can say what to do ON CONFLICT."""
    return CONFLICT_INSERTS[dialect(session)](table)
