"""Post engagement throughput: the streams worker's state engine against the raw fold of the same events.

Post activity (views, likes, comments, shares) over --posts posts, after each post's PostCreated, is
published once to a topic of --partitions partitions. Then, taking turns for --repeat rounds:

- (a) the raw fold: one confluent-kafka consumer, fastavro decoding, a dict of per-post counters
  and the author's likes, offsets committed asynchronously after every batch; no changelog, no
  store, no transaction: the ceiling for Python;
- (d) the streams worker: its state engine folds the same events into post-engagement (RocksDB,
  a compacted changelog, the authors' changes to user-stats-changes, one transaction per commit),
  beside its agents. Its rate runs from the first event its group commits to the last, read from
  the group's committed offsets every 50 ms.

    .venv/bin/python -m bench.engagement_throughput --events 1000000 --posts 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from bench.peers.single_object import read_single_object
from bench.raw_loop import timed_consume
from bench.signups_throughput import RESULTS, create_topic, writer_schemas
from bench.workers import bench_worker, progress_rate, scratch_broker
from streams.events import Event, PostCommented, PostCreated, PostLiked, PostShared, PostViewed
from streams.kafka.lag import GroupReader
from streams.producer import EventProducer
from streams.schemas import SchemaStore
from streams.settings import load_settings
from streams.topics import state_group_id

RAW = "(a) raw confluent-kafka + fastavro fold"
WORKER = "(d) streams worker, state engine"
ACTIVITIES = (PostViewed,) * 85 + (PostLiked,) * 10 + (PostCommented,) * 3 + (PostShared,) * 2
COUNTER = {"PostViewed": "views", "PostLiked": "likes", "PostCommented": "comments", "PostShared": "shares"}


def post_events(events: int, posts: int) -> list[Event]:
    """Each post's PostCreated, then activity on posts drawn at random until ``events`` in all."""
    rng = random.Random(2)
    created: list[Event] = [PostCreated.new(post_id=f"post{n}", author_id=f"user{n % 1000}", content="") for n in range(posts)]
    activity: list[Event] = []
    for _ in range(events - posts):
        kind = rng.choice(ACTIVITIES)
        post, user = f"post{rng.randrange(posts)}", f"user{rng.randrange(100_000)}"
        extra = {"comment_id": "c"} if kind is PostCommented else {}
        activity.append(kind.new(post_id=post, user_id=user, **extra))
    return created + activity


def raw_fold(bootstrap: str, topic: str, events: int) -> float:
    """Consume, decode, fold into a dict of per-post counters (and the author's likes), commit: events per second."""
    writers = writer_schemas(SchemaStore())
    names = {fingerprint: schema["name"].rpartition(".")[2] for fingerprint, schema in writers.items()}
    posts: dict[str, dict[str, Any]] = {}
    likes_received: dict[str, int] = {}

    def fold(message: Message) -> None:
        payload = message.value()
        record = read_single_object(payload, writers)
        post = posts.setdefault(record["post_id"], {"views": 0, "likes": 0, "comments": 0, "shares": 0, "author": None})
        kind = names[payload[2:10]]
        if kind == "PostCreated":
            post["author"] = record["author_id"]
        else:
            post[COUNTER[kind]] += 1
            if kind == "PostLiked" and post["author"] is not None:
                likes_received[post["author"]] = likes_received.get(post["author"], 0) + 1

    return timed_consume(bootstrap, topic, events, fold)


def streams_worker(bootstrap: str, topic: str, events: int, home: Path, partitions: int, stall: float = 300.0) -> float:
    """A fresh worker group: from the first event its state engine commits to the last, in events per second."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    worker = bench_worker({
        "STREAMS_KAFKA__BROKERS": bootstrap, "STREAMS_KAFKA__GROUP_ID": group,
        "STREAMS_TOPICS__POST_EVENTS": topic, "STREAMS_TOPICS__PARTITIONS": str(partitions),
    }, home, group)
    reader = GroupReader(load_settings(kafka={"brokers": bootstrap}).kafka)
    partitions_of_topic = reader.partitions([topic])
    worker.start()
    try:
        return progress_rate(
            lambda: sum(reader.committed(state_group_id(group), partitions_of_topic).values()), events, worker, stall,
        )
    finally:
        worker.stop()
        reader.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    events = post_events(args.events, args.posts)
    with scratch_broker() as (home, bootstrap):
        topic = f"bench-posts-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic, args.partitions)
        with EventProducer(load_settings(kafka={"brokers": bootstrap}, topics={"post_events": topic})) as producer:
            producer.publish_many(events, batch_size=5_000)
        raw_fold(bootstrap, topic, args.events)
        runs: dict[str, list[float]] = {RAW: [], WORKER: []}
        for round_ in range(args.repeat):
            runs[RAW].append(raw_fold(bootstrap, topic, args.events))
            runs[WORKER].append(streams_worker(bootstrap, topic, args.events, home, args.partitions))
            print(f"  round {round_ + 1}/{args.repeat}: " + ", ".join(f"{name} {rates[-1]:,.0f}" for name, rates in runs.items()),
                  flush=True)

    ceiling = statistics.median(runs[RAW])
    print(f"{args.events:,} post events over {args.posts:,} posts, {args.partitions} partitions, {args.repeat} runs each")
    summary = {}
    for name, rates in runs.items():
        median = statistics.median(rates)
        summary[name] = {"median": median, "min": min(rates), "max": max(rates), "runs": rates, "ratio": median / ceiling}
        print(f"{name:40} {median:10,.0f} ev/s  ({min(rates):,.0f} to {max(rates):,.0f})  {median / ceiling:6.1%} of raw")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "engagement_throughput.json"
    out.write_text(json.dumps({"events": args.events, "posts": args.posts, "partitions": args.partitions,
                               "pipelines": summary}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
