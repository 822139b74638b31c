"""Events per second of each family at several ``topics.in_flight`` values: where the defaults come from.

A fresh worker (one partition, a real SMTP server, SQLite or with ``--postgresql`` a private
PostgreSQL server) is given N events of one family, published before it starts, and the bench
times it from ready to the last effect: signups (UserCreated: the user, the profile, the search
entry and the welcome email) until the last welcome email arrives; new posts (PostCreated: the
post, its hashtags, the search entry and a notification for each of the author's 5 followers)
until the last processed-events row; newsletter emails until the last arrives. The values take turns, ``--repeat`` times, so machine noise hits
them alike. Exports are left out: each builds a whole file in the worker's process.

    .venv/bin/python -m bench.in_flight --events 2000 --values 1,4,8 --repeat 2
    .venv/bin/python -m bench.in_flight --families user,post --values 1,4 --postgresql
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from bench.workers import BenchDatabases, bench_databases, bench_worker, scratch_broker
from streams.admin import ensure_topics
from streams.cli_types import positive_int
from streams.db.engine import sync_engine
from streams.events import EmailNotification, Event, PostCreated, UserCreated
from streams.producer import EventProducer
from tests.conftest import Namespace, free_port
from tests.databases import seed_users
from tests.smtp_inbox import SmtpServer

RESULTS = Path(__file__).parent / "results"
FAMILIES = ("user", "post", "email")
AUTHORS = 20
FOLLOWERS_EACH = 5


def events_of(family: str, count: int) -> list[Event]:
    if family == "user":
        return [UserCreated.new(user_id=f"u{n}", email=f"u{n}@example.com", username=f"user{n}") for n in range(count)]
    if family == "post":
        return [PostCreated.new(post_id=f"p{n}", author_id=f"a{n % AUTHORS}", content=f"hello #tag{n % 50} #news {n}")
                for n in range(count)]
    return [EmailNotification.new(user_id=f"u{n}", template="newsletter", data={"title": "News", "body": "Hi"})
            for n in range(count)]


def seed(url: str, family: str, count: int) -> None:
    """The schema, and the users the family's handlers look up: the posts' authors and their followers, the
    emails' recipients (signups create their own)."""
    if family == "post":
        followers = {f"a{n}": tuple(f"f{n}-{m}" for m in range(FOLLOWERS_EACH)) for n in range(AUTHORS)}
        seed_users(url, *followers, *(name for names in followers.values() for name in names), followers=followers)
    elif family == "email":
        seed_users(url, *(f"u{n}" for n in range(count)))
    else:
        seed_users(url)


def rate(bootstrap: str, home: Path, family: str, count: int, in_flight: int, databases: BenchDatabases) -> float:
    """Events of ``family`` per second in a fresh worker handling ``in_flight`` of them at once."""
    namespace = Namespace(f"flight{uuid.uuid4().hex[:8]}", bootstrap)
    settings = namespace.settings()
    url = databases.new(home, namespace.prefix)
    seed(url, family, count)
    ensure_topics(settings.kafka, {settings.topics.for_family(family): {}}, 1, 1)
    with EventProducer(settings) as producer:
        producer.publish_many(events_of(family, count))
    database = sync_engine(url)
    with SmtpServer(free_port()) as smtp:
        done: Callable[[], int] = (lambda: len(smtp.inbox.messages)) if family != "post" else (
            lambda: processed(database))
        worker = bench_worker(
            {**namespace.env, "STREAMS_TOPICS__PARTITIONS": "1", "STREAMS_SMTP__PORT": str(smtp.port),
             "STREAMS_TOPICS__IN_FLIGHT": json.dumps({family: in_flight})},
            home, namespace.prefix, url,
        )
        worker.start()
        try:
            started, deadline = time.monotonic(), time.monotonic() + 600
            while done() < count and time.monotonic() < deadline:
                time.sleep(0.1)
            elapsed = time.monotonic() - started
        finally:
            worker.stop()
            database.dispose()
        if done() < count:
            raise SystemExit(f"{family}: only {done()} of {count} events done; see {worker.log_file}")
    return count / elapsed


def processed(database: sa.Engine) -> int:
    with database.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM processed_events")).scalar_one()


def values(text: str) -> list[int]:
    """``--values 1,4,8``: one or more counts of events in flight."""
    return [positive_int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=positive_int, default=2_000, help="events of each family per run")
    parser.add_argument("--values", type=values, default=[1, 4, 8], help="events in flight to compare, comma-separated")
    parser.add_argument("--families", type=lambda text: text.split(","), default=list(FAMILIES),
                        help=f"comma-separated, of {', '.join(FAMILIES)}")
    parser.add_argument("--repeat", type=positive_int, default=2)
    parser.add_argument("--postgresql", action="store_true", help="a private PostgreSQL server instead of SQLite")
    args = parser.parse_args()
    unknown = set(args.families) - set(FAMILIES)
    if unknown:
        parser.error(f"--families: unknown {', '.join(sorted(unknown))}; choose from {', '.join(FAMILIES)}")

    runs = {family: {value: [] for value in args.values} for family in args.families}
    with bench_databases(args.postgresql) as databases, scratch_broker() as (home, bootstrap):
        for _ in range(args.repeat):
            for family in args.families:
                for value in args.values:
                    runs[family][value].append(rate(bootstrap, home, family, args.events, value, databases))
                    print(f"  {family:6} in flight {value:3}: {runs[family][value][-1]:7.1f}/s", flush=True)

    database = databases.label
    print(f"events/s on one partition, {database}, {args.events:,} events per run (median of {args.repeat}):")
    for family, by_value in runs.items():
        print(f"  {family:6} " + "  ".join(
            f"{value}: {statistics.median(rates):6.1f} ({', '.join(f'{r:.1f}' for r in rates)})"
            for value, rates in by_value.items()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"in_flight_{database.lower()}.json"
    out.write_text(json.dumps(
        {"events": args.events, "database": database, "runs": {family: {str(v): r for v, r in by.items()} for family, by in runs.items()},
         "median": {family: {str(v): statistics.median(r) for v, r in by.items()} for family, by in runs.items()}},
        indent=2,
    ))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
