"""What each kind of email event costs a worker's event loop: where a failing event's cost goes.

A fresh worker (one partition, 8 emails in flight by default, SQLite, a real SMTP server) is given N events
of one kind, published at once. The bench reads the CPU time of the worker's event-loop thread
from /proc, from the first publish until every event is done, less what the same worker used
idle over as long (measured for 5 s before). The kinds:

- ``healthy``: a newsletter email, sent and logged.
- ``permanent``: an email with a template that does not exist; one attempt, then the dead-letter topic.
- ``missing``: an email for a user that does not exist; three attempts 1 s and 2 s apart (each
  retry through a delay tier and the relay), then the dead-letter topic.
- ``dead_letter``: a dead letter published straight to the dead-letter topic; stored only.

So ``permanent`` minus ``dead_letter`` is one failing attempt and its routing, and ``missing``
minus ``permanent`` is two more attempts with their trips through the relay. The kinds run in
turns, each ``--repeat`` times, so machine noise hits them alike.

    .venv/bin/python -m bench.failure_costs --events 2000 --repeat 3
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
from confluent_kafka import Producer

from bench.procfs import cpu_seconds
from bench.workers import bench_worker, scratch_broker
from streams.admin import ensure_topics
from streams.cli_types import positive_int
from streams.codec import build_codec
from streams.events import EmailNotification
from streams.producer import EventProducer
from streams.retry import ATTEMPTS, ERROR_MESSAGE, ERROR_TYPE, ORIGIN_TOPIC, TRACEBACK, write_headers
from tests.conftest import Namespace, free_port
from tests.databases import seed_users
from tests.smtp_inbox import SmtpServer

RESULTS = Path(__file__).parent / "results"
KINDS = ("healthy", "permanent", "missing", "dead_letter")
IDLE_S = 5.0


def email(kind: str, n: int) -> EmailNotification:
    user = f"ghost{n}" if kind == "missing" else f"u{n}"
    template = "no-such-template" if kind == "permanent" else "newsletter"
    return EmailNotification.new(user_id=user, template=template, data={"title": "News", "body": "Hi"})


def publish(namespace: Namespace, kind: str, count: int) -> None:
    settings = namespace.settings()
    if kind != "dead_letter":
        with EventProducer(settings) as producer:
            for n in range(count):
                producer.publish(email(kind, n))
        return
    codec = build_codec(settings.schema_registry.url)
    headers = write_headers({
        ATTEMPTS: 3, ORIGIN_TOPIC: settings.topics.email_events, ERROR_TYPE: "MissingEntityError",
        ERROR_MESSAGE: "no user", TRACEBACK: "Traceback (most recent call last):\n" + "  a frame\n" * 40,
    })
    producer = Producer({"bootstrap.servers": namespace.bootstrap})
    for n in range(count):
        producer.produce(settings.topics.dead_letters, codec.encode(email(kind, n)), headers=headers)
        producer.poll(0)
    producer.flush()


def loop_ms_per_event(bootstrap: str, home: Path, kind: str, count: int) -> float:
    """Event-loop CPU ms per event of ``kind`` in a fresh worker, its idle use taken out."""
    namespace = Namespace(f"cost{uuid.uuid4().hex[:8]}", bootstrap)
    settings = namespace.settings()
    ensure_topics(settings.kafka, {settings.topics.email_events: {}, settings.topics.dead_letters: {}}, 1, 1)
    with SmtpServer(free_port()) as smtp:
        worker = bench_worker(
            {**namespace.env, "STREAMS_TOPICS__PARTITIONS": "1", "STREAMS_SMTP__PORT": str(smtp.port)},
            home, namespace.prefix,
        )
        database = sa.create_engine(f"sqlite:///{home / namespace.prefix}.db")
        seed_users(str(database.url), *(f"u{n}" for n in range(count)))
        done: Callable[[], int] = (lambda: len(smtp.inbox.messages)) if kind == "healthy" else (
            lambda: dead_letters(database))
        worker.start()
        try:
            loop = worker.process.pid
            idle_from = cpu_seconds(loop, loop)
            time.sleep(IDLE_S)
            idle_rate = (cpu_seconds(loop, loop) - idle_from) / IDLE_S
            started, cpu_from = time.monotonic(), cpu_seconds(loop, loop)
            publish(namespace, kind, count)
            deadline = started + 600
            while done() < count and time.monotonic() < deadline:
                time.sleep(0.1)
            elapsed, cpu = time.monotonic() - started, cpu_seconds(loop, loop) - cpu_from
        finally:
            worker.stop()
            database.dispose()
    if done() < count:
        raise SystemExit(f"{kind}: only {done()} of {count} events done; see {worker.log_file}")
    return (cpu - idle_rate * elapsed) * 1000 / count


def dead_letters(database: sa.Engine) -> int:
    with database.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=positive_int, default=2_000, help="events of each kind per run")
    parser.add_argument("--repeat", type=positive_int, default=3)
    args = parser.parse_args()

    runs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with scratch_broker() as (home, bootstrap):
        for _ in range(args.repeat):
            for kind in KINDS:
                runs[kind].append(loop_ms_per_event(bootstrap, home, kind, args.events))
                print(f"  {kind:12} {runs[kind][-1]:6.2f} ms", flush=True)

    medians = {kind: statistics.median(values) for kind, values in runs.items()}
    print(f"event-loop CPU per event, {args.events:,} events per run (median of {args.repeat}):")
    for kind in KINDS:
        print(f"  {kind:12} {medians[kind]:6.2f} ms  (runs {', '.join(f'{ms:.2f}' for ms in runs[kind])})")
    attempt = medians["permanent"] - medians["dead_letter"]
    retries = medians["missing"] - medians["permanent"]
    print(f"  one failing attempt with its routing: {attempt:.2f} ms; two more attempts through the relay: {retries:.2f} ms")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "failure_costs.json").write_text(json.dumps(
        {"events": args.events, "runs_ms": runs, "median_ms": medians,
         "failing_attempt_ms": attempt, "two_retries_ms": retries}, indent=2,
    ))
    print(f"written: {RESULTS / 'failure_costs.json'}")


if __name__ == "__main__":
    main()
