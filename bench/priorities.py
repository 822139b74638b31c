"""Priorities under a backlog, on the real local broker: how late high-priority events are handled.

A worker starts with a backlog of low-priority events (newsletter emails, sent to a real SMTP
server) and keeps working through it while high-priority PostViewed events arrive at a steady
rate, each for a post of its own. An event's latency is the timestamp of the changelog record
its view wrote (set when the worker sent it) minus the timestamp the producer gave the event.
The run is repeated with the posts topic at low priority too, so the two are compared side by
side; the emails sent per second show what the backlog got meanwhile, and those sent in the
``--before`` seconds ahead of the first PostViewed what it got alone. ``--smtp-delay`` makes the
SMTP server take that long to accept each message, as a remote provider's does.

    .venv/bin/python -m bench.priorities --backlog 100000 --high 1000 --rate 100 --repeat 3 [--smtp-delay 0.1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from bench.retries import percentile
from bench.workers import scratch_broker
from streams.admin import ensure_topics
from streams.events import EmailNotification, PostViewed
from streams.producer import EventProducer
from streams.topics import POST_ENGAGEMENT, changelog_topic_name
from streams.worker_process import WorkerProcess
from tests.conftest import Namespace, free_port
from tests.databases import seed_users
from tests.smtp_inbox import SmtpServer

RESULTS = Path(__file__).parent / "results"
USERS = 100


def timestamps(bootstrap: str, topic: str, wanted: set[str], timeout: float) -> dict[str, int]:
    """The first record timestamp (ms) of each key in ``wanted``, read from the start of ``topic``."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
        "isolation.level": "read_uncommitted", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    found: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is None and message.key() is not None:
                    key = message.key().decode(errors="replace").strip('"')
                    if key in wanted:
                        found.setdefault(key, message.timestamp()[1])
    finally:
        consumer.close()
    return found


def run(
    bootstrap: str, home: Path, backlog: int, high: int, rate: float, post_priority: str, smtp_delay: float, before: float,
) -> dict[str, float]:
    namespace = Namespace(f"prio{uuid.uuid4().hex[:8]}", bootstrap)
    settings = namespace.settings()
    url = f"sqlite:///{home / namespace.prefix}.db"
    users = [f"u{n}" for n in range(USERS)]
    seed_users(url, *users)
    ensure_topics(settings.kafka, {settings.topics.email_events: {}, settings.topics.post_events: {}}, 4, 1)
    with EventProducer(settings) as producer:
        producer.publish_many(
            (EmailNotification.new(user_id=users[n % USERS], template="newsletter", data={"title": "News", "body": "Hi"})
             for n in range(backlog)),
            batch_size=5000,
        )
    with SmtpServer(free_port(), smtp_delay) as smtp:
        env = {
            **namespace.env, "STREAMS_DATABASE__URL": url, "STREAMS_SMTP__PORT": str(smtp.port),
            "STREAMS_STATE__DATA_DIR": str(home / namespace.prefix),
            "STREAMS_TOPICS__PRIORITIES": json.dumps({"post": post_priority}),
        }
        worker = WorkerProcess(env, home / f"{namespace.prefix}.log", free_port())
        worker.start()
        try:
            while len(smtp.inbox.messages) < 100:
                time.sleep(0.2)
            alone_from = len(smtp.inbox.messages)
            time.sleep(before)
            sent_before, started = len(smtp.inbox.messages), time.monotonic()
            emails_alone_per_s = (sent_before - alone_from) / before
            posts = [f"hp-{n}" for n in range(high)]
            with EventProducer(settings) as producer:
                if rate > 0:
                    for n, post in enumerate(posts):
                        producer.publish(PostViewed.new(post_id=post, user_id="u0"))
                        producer.flush()
                        time.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
                else:
                    producer.publish_many((PostViewed.new(post_id=post, user_id="u0") for post in posts), batch_size=5000)
                    time.sleep(max(0.0, started + before - time.monotonic()))
            emails_per_s = (len(smtp.inbox.messages) - sent_before) / (time.monotonic() - started)
            handled = timestamps(bootstrap, changelog_topic_name(settings.kafka.group_id, POST_ENGAGEMENT), set(posts), 120)
            published = timestamps(bootstrap, settings.topics.post_events, set(posts), 60)
        finally:
            worker.stop()
    if len(handled) < high:
        raise SystemExit(f"only {len(handled)} of {high} high-priority events were handled; see {worker.log_file}")
    latency = [handled[post] - published[post] for post in posts]
    return {"p50_ms": percentile(latency, 0.5), "p99_ms": percentile(latency, 0.99), "max_ms": max(latency),
            "emails_per_s": emails_per_s, "emails_alone_per_s": emails_alone_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--high", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="high-priority events per second; 0 publishes them all at once, a backlog of their own, "
                             "and counts the emails in the --before seconds after")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smtp-delay", type=float, default=0.0, help="seconds the SMTP server takes per message")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of emails alone before the first PostViewed")
    args = parser.parse_args()
    if args.smtp_delay < 0 or args.before <= 0:
        parser.error("--smtp-delay must not be negative and --before must be positive")

    runs: dict[str, list[dict[str, float]]] = {"high": [], "low": []}
    with scratch_broker() as (home, bootstrap):
        for _ in range(args.repeat):
            for priority in runs:
                runs[priority].append(run(
                    bootstrap, home, args.backlog, args.high, args.rate, priority, args.smtp_delay, args.before,
                ))

    pace = f"at {args.rate:g}/s" if args.rate > 0 else "all at once"
    print(f"{args.high:,} PostViewed {pace} behind {args.backlog:,} low-priority emails, the SMTP server "
          f"taking {args.smtp_delay:g} s a message ({args.repeat} runs each):")
    summary = {}
    for priority, results in runs.items():
        summary[priority] = {key: statistics.median(result[key] for result in results) for key in results[0]}
        line = summary[priority]
        print(f"  posts {priority:5} priority: latency p50 {line['p50_ms']:7.0f} ms  p99 {line['p99_ms']:7.0f} ms  "
              f"max {line['max_ms']:7.0f} ms  emails meanwhile {line['emails_per_s']:6.1f}/s "
              f"(alone {line['emails_alone_per_s']:6.1f}/s)  "
              f"(p99 runs {', '.join(str(round(r['p99_ms'])) for r in results)})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "priorities.json"
    out.write_text(json.dumps({"backlog": args.backlog, "high": args.high, "rate": args.rate,
                               "smtp_delay": args.smtp_delay, "runs": runs,
                               "median": summary}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
