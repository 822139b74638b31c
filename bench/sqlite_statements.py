"""Instructions per email transaction on SQLite: the agents' connections (a statement in one hand-off to the
connection's thread) against aiosqlite as SQLAlchemy adapts it (cursor, execute, fetch and close apart).

The email handler's database work runs in ``run_once`` as ``bench.db_drivers`` runs it, one email
after another, in a child process under ``valgrind --tool=callgrind``, which counts the instructions of
every thread: a count that does not move with this machine's speed, as its CPU time does by
20% from one run to the next. Each engine runs N healthy emails, 2N, and 2N with one failing
(no such user) after every twentieth; the differences give the instructions per healthy
transaction and per failing attempt, start-up and warm-up cancelled out.

    .venv/bin/python -m bench.sqlite_statements --emails 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.db_drivers import LANES, USERS, emails_to, log_email
from streams.cli_types import positive_int
from streams.db.engine import async_engine, configure_sqlite, session_factory, with_driver
from streams.db.once import run_once
from streams.errors import EntityNotFoundError
from tests.databases import seed_users

RESULTS = Path(__file__).parent / "results"
ENGINES = ("one hand-off", "aiosqlite adapted")


def engine_for(name: str, url: str) -> AsyncEngine:
    if name == "one hand-off":
        return async_engine(url, LANES + 1)
    engine = create_async_engine(with_driver(url, asynchronous=True), pool_size=LANES + 1)
    configure_sqlite(engine.sync_engine)
    return engine


async def handle(name: str, url: str, emails: int, failing: bool) -> None:
    """One email after another: under callgrind the threads crawl, and writers side by side would wait past
    SQLite's lock timeout; the hand-offs per transaction are the same."""
    engine = engine_for(name, url)
    sessions = session_factory(engine)
    try:
        for event in emails_to(emails, failing):
            try:
                await run_once(sessions, event, "emails.send", lambda session: log_email(session, event))
            except EntityNotFoundError:
                pass
    finally:
        await engine.dispose()


def instructions(name: str, seeded: Path, emails: int, failing: bool) -> int:
    """Instructions of a child process that handles ``emails`` on a copy of the seeded database."""
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "streams.db"
        shutil.copy(seeded, database)
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, "-m", "bench.sqlite_statements", "--child", name, f"sqlite:///{database}", str(emails),
             str(int(failing))],
            capture_output=True, text=True,
        )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode or not found:
        raise SystemExit(f"{name}: the child under callgrind failed (exit {run.returncode}): {run.stderr[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=positive_int, default=100)
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "URL", "EMAILS", "FAILING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, url, emails, failing = args.child
        asyncio.run(handle(name, url, int(emails), failing == "1"))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.db"
        seed_users(f"sqlite:///{seeded}", *(f"u{n}" for n in range(USERS)))
        n = args.emails
        for name in ENGINES:
            once, twice, mixed = (instructions(name, seeded, emails, failing)
                                  for emails, failing in ((n, False), (2 * n, False), (2 * n, True)))
            failing_attempts = len(emails_to(2 * n, True)) - 2 * n
            results[name] = {"healthy": (twice - once) / n, "failing_attempt": (mixed - twice) / failing_attempts}
            print(f"  {name:18} {results[name]['healthy'] / 1e6:6.2f} M instructions per healthy email's transaction, "
                  f"{results[name]['failing_attempt'] / 1e6:6.2f} M per failing attempt", flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "sqlite_statements.json"
    out.write_text(json.dumps({"emails": args.emails, "instructions": results}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
