"""State recovery on the real local broker: how long a worker takes to rebuild 1,000,000 keys.

A worker folds one PostViewed event for each of N distinct posts into the post-engagement state
(N keys, N changelog records). It is stopped, and started again two ways, in turns:
 - warm: the local RocksDB store is kept, so only the changelog's tail is read;
 - cold: the store is deleted, so every key is rebuilt from the changelog.
Each time is measured from the start of the process until /health reports every state running
with every partition restored, and the last key answers. A sample of keys is then read back to check
the rebuilt values, and the time one /posts/top query takes over every key is measured too.

    .venv/bin/python -m bench.recovery --keys 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import time
import urllib.error
import uuid
from pathlib import Path

from bench.workers import scratch_broker
from streams.events import PostViewed
from streams.producer import EventProducer
from streams.worker_process import WorkerProcess
from tests.conftest import Namespace, free_port

RESULTS = Path(__file__).parent / "results"


def health(worker: WorkerProcess) -> dict:
    try:
        return worker.get("/health")
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def wait_caught_up(worker: WorkerProcess, topic: str, timeout: float = 3600) -> None:
    """Wait until the worker's state engine has committed every event of ``topic`` (its states' lag 0 in /health)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = health(worker).get("states", {}).values()
        if states and all(state.get("lag") == 0 for state in states):
            return
        time.sleep(1)
    raise SystemExit(f"the worker did not catch up with {topic} within {timeout:.0f}s; see {worker.log_file}")


def wait_ready(worker: WorkerProcess, keys: int, started: float, timeout: float = 1800) -> float:
    """Seconds from ``started`` until every state runs with all its partitions restored here."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = health(worker)
        states = body.get("states", {})
        if states and all(state["state"] == "running" and state["partitions"] for state in states.values()):
            try:
                worker.get(f"/posts/post{keys - 1}/engagement")
                return time.monotonic() - started
            except urllib.error.HTTPError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"the worker did not recover within {timeout:.0f}s; see {worker.log_file}")


def check_sample(worker: WorkerProcess, keys: int, sample: int = 200) -> None:
    for n in random.Random(3).sample(range(keys), min(sample, keys)):
        body = worker.get(f"/posts/post{n}/engagement")
        if body["views"] != 1:
            raise SystemExit(f"post{n} has {body['views']} views after recovery, not 1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with scratch_broker() as (home, bootstrap):
        namespace = Namespace(f"rec{uuid.uuid4().hex[:8]}", bootstrap)
        store = home / "store"
        env = {**namespace.env, "STREAMS_STATE__DATA_DIR": str(store), "STREAMS_DATABASE__URL": f"sqlite:///{home}/db.sqlite"}
        with EventProducer(namespace.settings()) as producer:
            producer.publish_many((PostViewed.new(post_id=f"post{n}", user_id="u") for n in range(args.keys)), 10_000)
        worker = WorkerProcess(env, home / "worker.log", free_port())
        started = time.monotonic()
        try:
            worker.start(timeout=120)
            wait_caught_up(worker, namespace.settings().topics.post_events)
            built = time.monotonic() - started
        finally:
            worker.stop(timeout=120)
        print(f"built {args.keys:,} keys in {built:.0f}s ({args.keys / built:,.0f} keys/s)")

        runs: dict[str, list[float]] = {"warm": [], "cold": []}
        top_s: list[float] = []
        for _ in range(args.repeat):
            for mode in ("warm", "cold"):
                if mode == "cold":
                    shutil.rmtree(store)
                worker = WorkerProcess(env, home / f"worker-{mode}.log", free_port())
                started = time.monotonic()
                worker.start(timeout=300)
                runs[mode].append(wait_ready(worker, args.keys, started))
                check_sample(worker, args.keys)
                top_started = time.monotonic()
                worker.get("/posts/top?limit=10&min_views=0", timeout=600)
                top_s.append(time.monotonic() - top_started)
                worker.stop(timeout=120)
                print(f"  {mode}: {runs[mode][-1]:.1f}s")

    print(f"recovery of {args.keys:,} keys (s, median of {args.repeat}):")
    for mode, times in runs.items():
        median = statistics.median(times)
        print(f"  {mode:5} median {median:6.1f}  runs {', '.join(f'{t:.1f}' for t in times)}  ({args.keys / median:,.0f} keys/s)")
    print(f"/posts/top over {args.keys:,} keys: median {statistics.median(top_s):.2f}s")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "recovery.json"
    out.write_text(json.dumps({"keys": args.keys, "build_s": built, "runs_s": runs, "top_s": top_s}, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
