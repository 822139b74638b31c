"""Database outages: while the database cannot be reached every event would fail alike.

Spending an event's attempts on an outage would send whole streams of good events to the
dead-letter topic within seconds. So a handler that fails because the database is unreachable
waits here until it answers again and then runs once more, holding its partition meanwhile;
the events behind it would meet the same outage anyway. One probe per worker finds out when the
database is back, and the outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How often one piece of work may wait out a database outage and run again before its error is its own
#: (an error that looks like an outage while the database answers is the work's own).
OUTAGE_HOLDS = 5
#: Seconds between probes: the first soon, later ones further apart.
FIRST_PROBE = 0.25
LONGEST_PROBE = 5.0


#: SQLSTATEs of a server that cannot be reached or is going away: the connection exceptions (class 08) and
#: the shutdown and start-up refusals (57P01-57P03). asyncpg's errors reach SQLAlchemy as plain DBAPI
#: errors that carry the SQLSTATE, where psycopg's are OperationalError.
OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def is_outage(error: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not: a query it refused)."""
    if isinstance(error, DBAPIError) and (
        error.connection_invalidated or (getattr(error.orig, "sqlstate", None) or "").startswith(OUTAGE_SQLSTATES)
    ):
        return True
    return isinstance(error, (OperationalError, InterfaceError, ConnectionError))


class OutageGate:
    """Every agent of a worker waits on the same gate; only one of them probes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.lock = asyncio.Lock()
        self.recoveries = 0

    async def through_outages(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, and run it again after each database outage it meets, up to ``OUTAGE_HOLDS`` times;
        any other error, or an outage past that, is raised."""
        holds = 0
        while True:
            try:
                return await work()
            except Exception as exc:
                holds += 1
                if not is_outage(exc) or holds > OUTAGE_HOLDS:
                    raise
                await self.wait_until_reachable(exc)

    async def wait_until_reachable(self, error: BaseException) -> None:
        """Return once the database answers a query again (at once when another waiter just saw it answer)."""
        seen = self.recoveries
        async with self.lock:
            if self.recoveries != seen:
                return
            started = time.monotonic()
            logger.error("database unreachable (%s: %s); holding events until it answers",
                         type(error).__name__, str(error).strip().splitlines()[0] if str(error).strip() else "")
            pause = FIRST_PROBE
            while not await self.answers():
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PROBE)
            self.recoveries += 1
            logger.warning("database reachable again after %.1fs; handling events", time.monotonic() - started)

    async def answers(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            if not is_outage(exc) and not isinstance(exc, OSError):
                raise
            return False
        return True
