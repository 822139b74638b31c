"""Event-loop CPU per transaction of the agents' PostgreSQL engine (asyncpg), against the same with SQLAlchemy's
pre-ping and psycopg's async mode with it.

An email handler's database work runs against a private PostgreSQL server (fsync off) in
``run_once``, as in the worker: a healthy email looks its user up and logs the email (one commit),
a failing one finds no user and rolls back. Four handlers run at once, as a worker's email lanes
do. Each turn measures this thread's CPU over N healthy emails alone and over N healthy emails
with one failing among every 20; the engines take turns, alternating which goes first.

    .venv/bin/python -m bench.db_drivers --emails 4000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from bench.retries import newsletters
from bench.workers import free_port
from streams.cli_types import positive_int
from streams.db.engine import async_engine, session_factory, with_driver
from streams.db.models import EmailLog, User
from streams.db.once import run_once
from streams.errors import EntityNotFoundError
from streams.events import EmailNotification
from tests.databases import PostgresServer, seed_users

RESULTS = Path(__file__).parent / "results"
USERS = 100
LANES = 4
FAILING_EVERY = 20


def engines(url: str) -> dict[str, Callable[[], AsyncEngine]]:
    """The service's engine (asyncpg, pooled connections checked without a round trip), the same driver pinging
    each connection it takes from the pool, and that pool with psycopg's async mode."""
    asyncpg_url = with_driver(url, asynchronous=True)
    psycopg_url = asyncpg_url.set(drivername="postgresql+psycopg")
    return {
        "asyncpg": lambda: async_engine(url, LANES + 1),
        "asyncpg-ping": lambda: create_async_engine(asyncpg_url, pool_pre_ping=True, pool_size=LANES + 1),
        "psycopg-ping": lambda: create_async_engine(psycopg_url, pool_pre_ping=True, pool_size=LANES + 1),
    }


async def log_email(session: AsyncSession, event: EmailNotification) -> None:
    """The email handler's database work, without the SMTP send."""
    user = await session.get(User, event.user_id)
    if user is None:
        raise EntityNotFoundError(f"no user {event.user_id!r}")
    session.add(EmailLog(event_id=str(event.id), recipient=user.email, template=event.template, status="sent"))


def emails_to(emails: int, failing: bool) -> list[EmailNotification]:
    """``emails`` newsletters to the seeded users, with one to a user that does not exist after every
    ``FAILING_EVERY``th when ``failing`` (the retries benchmark's newsletters)."""
    users = [f"u{n % USERS}" for n in range(emails)]
    return [event for event, _ in newsletters(users, emails // FAILING_EVERY if failing else 0)]


async def loop_cpu(new_engine: Callable[[], AsyncEngine], events: list[EmailNotification]) -> float:
    """This thread's CPU seconds for handling ``events``, ``LANES`` at once, after a warm-up on the same pool."""
    engine = new_engine()
    sessions = session_factory(engine)
    queue: asyncio.Queue[EmailNotification] = asyncio.Queue()

    async def lane() -> None:
        while not queue.empty():
            event = queue.get_nowait()
            try:
                await run_once(sessions, event, "emails.send", lambda session: log_email(session, event))
            except EntityNotFoundError:
                pass

    async def handle(batch: list[EmailNotification]) -> None:
        for event in batch:
            queue.put_nowait(event)
        await asyncio.gather(*(lane() for _ in range(LANES)))

    try:
        await handle(emails_to(200, failing=False))
        started = time.thread_time()
        await handle(events)
        return time.thread_time() - started
    finally:
        await engine.dispose()


async def measure(url: str, emails: int, repeat: int) -> dict[str, dict[str, list[float]]]:
    drivers = engines(url)
    runs: dict[str, dict[str, list[float]]] = {name: {"healthy_ms": [], "failing_attempt_ms": []} for name in drivers}
    for turn in range(repeat):
        for name in list(drivers) if turn % 2 == 0 else reversed(drivers):
            clean = await loop_cpu(drivers[name], emails_to(emails, failing=False))
            mixed = await loop_cpu(drivers[name], events := emails_to(emails, failing=True))
            healthy_ms = clean * 1000 / emails
            runs[name]["healthy_ms"].append(healthy_ms)
            runs[name]["failing_attempt_ms"].append((mixed * 1000 - healthy_ms * emails) / (len(events) - emails))
            print(f"  {name:12} healthy {healthy_ms:.3f} ms, failing attempt {runs[name]['failing_attempt_ms'][-1]:.3f} ms",
                  flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=positive_int, default=4_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    args = parser.parse_args()

    with PostgresServer(free_port()) as server:
        url = server.new_database()
        seed_users(url, *(f"u{n}" for n in range(USERS)))
        runs = asyncio.run(measure(url, args.emails, args.repeat))

    print(f"event-loop CPU per email's transaction, {LANES} at once (median of {args.repeat}):")
    medians = {name: {key: statistics.median(values) for key, values in run.items()} for name, run in runs.items()}
    for name, median in medians.items():
        print(f"  {name:12} healthy {median['healthy_ms']:.3f} ms, failing attempt (among healthy ones) "
              f"{median['failing_attempt_ms']:.3f} ms")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "db_drivers.json"
    out.write_text(json.dumps({"emails": args.emails, "runs": runs, "medians": medians}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
