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
import tempfile
import time
import uuid
from collections import Counter
from io import BytesIO
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro import schemaless_reader

from streams.demo import demo_signups
from streams.devkafka import LocalBroker
from streams.producer import EventProducer
from streams.schemas import SchemaStore
from streams.settings import load_settings
from streams.worker_process import WorkerProcess
from tests.conftest import JARS_CACHE, free_port

RESULTS = Path(__file__).parent / "results"


def produce(bootstrap: str, topic: str, events: int, partitions: int) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    settings = load_settings(kafka={"brokers": bootstrap}, topics={"user_events": topic})
    signups = demo_signups(events, days=30, rng=random.Random(1))
    started = time.perf_counter()
    with EventProducer(settings) as producer:
        for event in signups:
            producer.publish(event)
    return events / (time.perf_counter() - started)


def raw_loop(bootstrap: str, topic: str, events: int) -> float:
    """The practical Python ceiling: batch consume, fastavro decode, a dict update, commit."""
    store = SchemaStore()
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
         "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    per_day: Counter[str] = Counter()
    seen = 0
    started = None
    while seen < events:
        batch = consumer.consume(1000, timeout=1.0)
        if started is None and batch:
            started = time.perf_counter()
        for message in batch:
            payload = message.value()
            writer = store.by_fingerprint(payload[2:10])
            body = BytesIO(payload)
            body.seek(10)
            record = schemaless_reader(body, writer.parsed, None)
            per_day[record["envelope"]["created_at"].date().isoformat()] += 1
        seen += len(batch)
        if batch:
            consumer.commit(asynchronous=True)
    elapsed = time.perf_counter() - started
    consumer.close()
    return events / elapsed


def streams_worker(bootstrap: str, topic: str, events: int, home: Path, partitions: int) -> float:
    """The real worker: from its first counted event to the last, as the web view reports them."""
    env = {
        "STREAMS_KAFKA__BROKERS": bootstrap,
        "STREAMS_KAFKA__GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "STREAMS_TOPICS__USER_EVENTS": topic,
        "STREAMS_TOPICS__PARTITIONS": str(partitions),
        "STREAMS_STATE__DATA_DIR": str(home / uuid.uuid4().hex),
    }
    worker = WorkerProcess(env, home / "worker.log", free_port())
    worker.start()
    try:
        first_count, first_at = 0, None
        while True:
            total = worker.get("/signups")["total"]
            now = time.perf_counter()
            if first_at is None and total > 0:
                first_count, first_at = total, now
            if total >= events:
                return (total - first_count) / (now - first_at)
            time.sleep(0.05)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        broker = LocalBroker(home / "kafka", port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
        bootstrap = broker.start()
        try:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            producer_rate = produce(bootstrap, topic, args.events, args.partitions)
            raw_loop(bootstrap, topic, args.events)
            runs: dict[str, list[float]] = {"raw confluent-kafka + fastavro": [], "streams worker": []}
            for _ in range(args.repeat):
                runs["raw confluent-kafka + fastavro"].append(raw_loop(bootstrap, topic, args.events))
                runs["streams worker"].append(streams_worker(bootstrap, topic, args.events, home, args.partitions))
        finally:
            broker.stop()

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
