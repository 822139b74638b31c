"""SQLite connections for the agents whose statements cost one hand-off to the connection's thread each.

aiosqlite runs a SQLite connection in a thread of its own, and SQLAlchemy's adapter hands it
every step of a statement apart: making a cursor, executing, fetching the rows, closing the
cursor; a commit or rollback is one more, even when no transaction is open. Each hand-off wakes
that thread and the event loop in turn, and on a worker pinned to one CPU the two take the
interpreter lock from each other every time: a healthy email's transaction took 18 of them, a
failing attempt's 10. Here a statement runs, has its rows read and its cursor closed in one
hand-off, and a commit or rollback with no transaction open (SQLite opens one only at the
first write) costs none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite

#: What a statement leaves for SQLAlchemy to read: the cursor's description, rowcount, lastrowid and rows.
Outcome = tuple[Any, int, int | None, list[Any]]


def run_statement(connection: sqlite3.Connection, sql: str, parameters: Sequence[Any] | None, many: bool) -> Outcome:
    """In the connection's thread: execute, read every row, close the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters or ())
        else:
            cursor.execute(sql, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor:
    """The cursor SQLAlchemy's aiosqlite adapter uses, with each statement's outcome read in one hand-off."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self.connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.rows: list[Any] = []

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.rows = []

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneHopCursor:
        return await self.run(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> OneHopCursor:
        return await self.run(sql, parameters, many=True)

    async def run(self, sql: str, parameters: Any, many: bool) -> OneHopCursor:
        self.description, self.rowcount, self.lastrowid, self.rows = await self.connection.in_thread(
            run_statement, sql, parameters, many,
        )
        return self

    async def fetchall(self) -> list[Any]:
        rows, self.rows = self.rows, []
        return rows

    async def close(self) -> None:
        self.rows = []


class OneHopConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors read each statement in one hand-off, and whose commit and rollback
    hand nothing off while no transaction is open."""

    def __init__(self, path: str) -> None:
        """Opened as SQLAlchemy opens aiosqlite's: SQLite's same-thread check off (the adapter reads settings from the
        event loop's thread) and the connection's thread a daemon, so one never closed does not keep a process alive."""
        super().__init__(lambda: sqlite3.connect(path, check_same_thread=False), iter_chunk_size=64)
        self._thread.daemon = True

    async def in_thread(self, function: Any, *args: Any) -> Any:
        """``function(sqlite3 connection, *args)``, run in this connection's thread."""
        return await self._execute(function, self._conn, *args)

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def commit(self) -> None:
        if self.in_transaction:
            await self.in_thread(sqlite3.Connection.commit)

    async def rollback(self) -> None:
        if self.in_transaction:
            await self.in_thread(sqlite3.Connection.rollback)


def connector(database: str) -> Callable[[], Awaitable[OneHopConnection]]:
    """``async_creator`` for SQLAlchemy: a new connection to the SQLite file ``database``."""

    async def connect() -> OneHopConnection:
        connection = OneHopConnection(database)
        await connection
        return connection

    return connect
