"""Signup counting throughput: the streams worker against a raw confluent-kafka + fastavro loop.

Both read the same pre-produced topic of Avro UserCreated events from the real local broker, in
the same run, alternating, so machine noise hits both alike. Prints a table, writes JSON.

    .venv/bin/python -m bench.signups_throughput --events 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, NewTopic

from bench.peers.single_object import read_single_object, signup_day
from bench.raw_loop import timed_consume
from bench.workers import bench_worker, progress_rate, scratch_broker
from streams.demo import demo_signups
from streams.events import UserCreated
from streams.producer import EventProducer
from streams.schemas import SchemaStore
from streams.settings import load_settings

RESULTS = Path(__file__).parent / "results"


def signup_events(count: int) -> list[UserCreated]:
    """The benchmarks' signups: spread over 30 UTC days, the same mix of days every run."""
    return demo_signups(count, days=30, rng=random.Random(1))


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap: str, topic: str, signups: list[UserCreated], partitions: int) -> float:
    """Publish ``signups`` to a new topic with the project's producer; returns events per second."""
    create_topic(bootstrap, topic, partitions)
    settings = load_settings(kafka={"brokers": bootstrap}, topics={"user_events": topic})
    started = time.perf_counter()
    with EventProducer(settings) as producer:
        for event in signups:
            producer.publish(event)
    return len(signups) / (time.perf_counter() - started)


def writer_schemas(store: SchemaStore) -> dict[bytes, dict[str, Any]]:
    """Every current schema's parsed form by its fingerprint, as read_single_object wants them."""
    schemas = [store.by_name(name) for name in store.names()]
    return {schema.fingerprint: schema.parsed for schema in schemas}


def raw_loop(bootstrap: str, topic: str, events: int) -> float:
    """The practical Python ceiling: batch consume, fastavro decode, a dict update, commit."""
    writers = writer_schemas(SchemaStore())
    per_day: Counter[str] = Counter()

    def count(message: Message) -> None:
        per_day[signup_day(read_single_object(message.value(), writers))] += 1

    return timed_consume(bootstrap, topic, events, count)


def streams_worker(bootstrap: str, topic: str, events: int, home: Path, partitions: int, stall: float = 300.0) -> float:
    """The real worker: from its first counted event to the last, as the web view reports them.

    It gets a database of its own, so its side effects (users, welcome emails) start afresh each run.
    """
    group = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        "STREAMS_KAFKA__BROKERS": bootstrap,
        "STREAMS_KAFKA__GROUP_ID": group,
        "STREAMS_TOPICS__USER_EVENTS": topic,
        "STREAMS_TOPICS__PARTITIONS": str(partitions),
    }
    worker = bench_worker(env, home, group)
    worker.start()
    try:
        return progress_rate(lambda: worker.get("/signups")["total"], events, worker, stall)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    with scratch_broker() as (home, bootstrap):
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        producer_rate = produce(bootstrap, topic, signup_events(args.events), args.partitions)
        raw_loop(bootstrap, topic, args.events)
        runs: dict[str, list[float]] = {"raw confluent-kafka + fastavro": [], "streams worker": []}
        for _ in range(args.repeat):
            runs["raw confluent-kafka + fastavro"].append(raw_loop(bootstrap, topic, args.events))
            runs["streams worker"].append(streams_worker(bootstrap, topic, args.events, home, args.partitions))

    ceiling = statistics.median(runs["raw confluent-kafka + fastavro"])
    print(f"{args.events} UserCreated events, {args.partitions} partitions, {args.repeat} runs each; "
          f"producer {producer_rate:,.0f} ev/s")
    print(f"{'pipeline':34} {'median ev/s':>12} {'min':>10} {'max':>10} {'vs raw':>7}")
    summary = {}
    for name, rates in runs.items():
        median = statistics.median(rates)
        summary[name] = {"median": median, "runs": rates, "ratio_to_raw": median / ceiling}
        print(f"{name:34} {median:12,.0f} {min(rates):10,.0f} {max(rates):10,.0f} {median / ceiling:7.0%}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "signups_throughput.json"
    out.write_text(json.dumps({"events": args.events, "partitions": args.partitions,
                               "producer_events_per_s": producer_rate, "pipelines": summary}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
