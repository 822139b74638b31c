"""The streams worker's memory while it holds a post-engagement table of N keys.

N PostViewed events, each for a post of its own, are folded into N keys of the engagement table.
Once the worker's group has committed them all (lag 0 in /health) and the last key answers, the
peak resident memory of the worker's processes is read from /proc (VmHWM, which the kernel keeps
for each process), along with what is resident then (VmRSS).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from bench.procfs import memory_kib, process_tree
from bench.recovery import wait_caught_up
from bench.workers import bench_worker
from streams.events import PostViewed
from streams.producer import EventProducer
from tests.conftest import Namespace


def publish_views(bootstrap: str, keys: int) -> Namespace:
    """One PostViewed for each of ``keys`` posts, in a namespace of their own."""
    namespace = Namespace(f"mem{uuid.uuid4().hex[:8]}", bootstrap)
    with EventProducer(namespace.settings()) as producer:
        producer.publish_many((PostViewed.new(post_id=f"post{n}", user_id="u") for n in range(keys)), 10_000)
    return namespace


def held_table_memory(namespace: Namespace, keys: int, home: Path, partitions: int) -> dict[str, float]:
    """A new worker group folds every view into the table; its memory once it holds all ``keys`` keys."""
    group = f"{namespace.prefix}-{uuid.uuid4().hex[:6]}"
    env = {**namespace.env, "STREAMS_KAFKA__GROUP_ID": group, "STREAMS_TOPICS__PARTITIONS": str(partitions)}
    worker = bench_worker(env, home, group)
    started = time.monotonic()
    try:
        worker.start(timeout=120)
        wait_caught_up(worker, namespace.settings().topics.post_events)
        worker.get(f"/posts/post{keys - 1}/engagement")
        built = time.monotonic() - started
        pids = process_tree(worker.process.pid)
        return {
            "peak_rss_mib": sum(memory_kib(pid, "VmHWM") for pid in pids) / 1024,
            "rss_mib": sum(memory_kib(pid, "VmRSS") for pid in pids) / 1024,
            "processes": len(pids), "build_s": built,
        }
    finally:
        worker.stop(timeout=120)
