"""The streams worker against its peers on the real local broker: one table, and bench/results/compare.json.

1. throughput: signups counted per UTC day (decode, a state update, commit) over --events Avro
   UserCreated events on --partitions partitions, by (a) the raw confluent-kafka + fastavro loop,
   the ceiling; (b) Quix Streams with its RocksDB state; (c) plain Faust on a JSON copy of the
   events, with a RocksDB table; (d) the streams worker. Goals: (d) at least 60% of (a), ahead of (b).
2. producer: EventProducer (publish, publish_many) against a raw confluent-kafka producer with
   fastavro, the same framing and settings. Goal: 90% or more.
3. latency: p50 and p99 through the streams worker at each --latency-rates signups/s, offered for
   --latency-seconds each (definition: bench.latency).
4. memory: the worker's peak RSS while it holds a table of --memory-keys keys.

Each part warms up first; its contenders (or rates) take turns for --repeat runs, so machine
noise hits them alike, and the median is reported with the spread (min..max). A run of some parts
(--only) keeps the other parts' latest results in the file; each part records when it ran.

    .venv/bin/python -m bench.compare
    .venv/bin/python -m bench.compare --only throughput,producer --events 50000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import latency, peer_pipelines, producer_throughput, worker_memory
from bench.signups_throughput import RESULTS, produce, raw_loop, signup_events, streams_worker
from bench.workers import scratch_broker

PARTS = ("throughput", "producer", "latency", "memory")
RAW = "(a) raw confluent-kafka + fastavro"
QUIX = "(b) Quix Streams 3.28.1, RocksDB state"
WORKER = "(d) streams worker"


def spread(values: list[float], ceiling: float | None = None) -> dict[str, Any]:
    """Median, min, max and the runs; with a ``ceiling``, the median's ratio to it."""
    median = statistics.median(values)
    line = {"median": median, "min": min(values), "max": max(values), "runs": values}
    return {**line, "ratio": median / ceiling} if ceiling else line


def take_turns(contenders: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[Any]]:
    """Every contender once per round, in the same order, ``repeat`` rounds."""
    runs: dict[str, list[Any]] = {name: [] for name in contenders}
    for round_ in range(repeat):
        for name, run in contenders.items():
            runs[name].append(run())
            print(f"  round {round_ + 1}/{repeat} {name}: {runs[name][-1]}", flush=True)
    return runs


def throughput(bootstrap: str, home: Path, args: argparse.Namespace, python: Path) -> dict[str, Any]:
    """Part 1: the same signups, as Avro and as a JSON copy, counted by (a) to (d) in turns."""
    signups = signup_events(args.events)
    topic = f"signups-{uuid.uuid4().hex[:8]}"
    produced = produce(bootstrap, topic, signups, args.partitions)
    peer_pipelines.produce_json(bootstrap, f"{topic}-json", signups, args.partitions)
    del signups  # the runs read them from the topics; free their memory
    writers = peer_pipelines.write_writer_schemas(home / "writers.json")
    timeout = 600 + args.events / 500
    raw_loop(bootstrap, topic, args.events)  # warm-up: brings the topic into the broker's page cache
    runs = take_turns({
        RAW: lambda: raw_loop(bootstrap, topic, args.events),
        QUIX: lambda: peer_pipelines.quix(python, bootstrap, topic, args.events, writers, home, timeout),
        "(c) plain Faust, JSON, RocksDB table": lambda: peer_pipelines.faust_json(
            bootstrap, f"{topic}-json", args.partitions, args.events, home, timeout),
        WORKER: lambda: streams_worker(bootstrap, topic, args.events, home, args.partitions),
    }, args.repeat)
    ceiling = statistics.median(runs[RAW])
    pipelines = {name: spread(rates, ceiling) for name, rates in runs.items()}
    return {"events": args.events, "partitions": args.partitions, "setup_producer_per_s": produced,
            "pipelines": pipelines, "goals": {
                "worker_at_least_60pct_of_raw": pipelines[WORKER]["ratio"] >= 0.6,
                "worker_ahead_of_quix": pipelines[WORKER]["median"] > pipelines[QUIX]["median"]}}


def producer(bootstrap: str, args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: the same signups published by each producer in turns, each run to a new topic."""
    signups = signup_events(args.events)
    for name in producer_throughput.PRODUCERS:  # warm-up
        producer_throughput.producer_rate(bootstrap, name, signups[:10_000], args.partitions)
    runs = take_turns({
        name: lambda name=name: producer_throughput.producer_rate(bootstrap, name, signups, args.partitions)
        for name in producer_throughput.PRODUCERS}, args.repeat)
    ceiling = statistics.median(runs[producer_throughput.RAW])
    producers = {name: spread(rates, ceiling) for name, rates in runs.items()}
    return {"events": args.events, "partitions": args.partitions, "producers": producers,
            "goal_90pct": {name: line["ratio"] >= 0.9 for name, line in producers.items()}}


def latencies(bootstrap: str, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Part 3: each offered rate in turns, each run with a worker of its own so no backlog carries over."""
    runs = take_turns({f"{rate:g}/s": lambda rate=rate: latency.paced_run(
        bootstrap, home, rate, args.latency_seconds, args.latency_drain, args.partitions)
        for rate in args.latency_rates}, args.repeat)
    summary = {}
    for rate, results in runs.items():
        p99 = [run["p99_ms"] for run in results]
        summary[rate] = {
            "offered_per_s": statistics.median(run["offered_per_s"] for run in results),
            "p50_ms": statistics.median(run["p50_ms"] for run in results), "p99_ms": statistics.median(p99),
            "p99_runs_ms": p99, "not_done": sum(run["not_done"] for run in results),
            "events": sum(run["events"] for run in results), "runs": results,
        }
    return {"definition": latency.DEFINITION, "seconds": args.latency_seconds, "drain_s": args.latency_drain,
            "rates": summary}


def memory(bootstrap: str, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Part 4: the views are published once; each run is a new worker group building the whole table."""
    namespace = worker_memory.publish_views(bootstrap, args.memory_keys)
    runs = take_turns({"worker": lambda: worker_memory.held_table_memory(
        namespace, args.memory_keys, home, args.partitions)}, args.repeat)["worker"]
    return {"keys": args.memory_keys, "peak_rss_mib": spread([run["peak_rss_mib"] for run in runs]),
            "build_s": spread([run["build_s"] for run in runs]), "runs": runs}


def rate_row(name: str, line: dict[str, Any]) -> str:
    ratio = f"{line['ratio']:.1%}" if line["ratio"] >= 0.01 else f"{line['ratio']:.2%}"
    return f"| {name} | {line['median']:,.0f} | {line['min']:,.0f}..{line['max']:,.0f} | {ratio} |"


def print_rates(title: str, contender: str, versus: str, lines: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title} (ev/s):")
    print(f"| {contender} | median ev/s | runs (min..max) | {versus} |\n|---|---|---|---|")
    for name, line in lines.items():
        print(rate_row(name, line))


def ms(value: float, lower_bound: bool) -> str:
    return f"{'>= ' if lower_bound else ''}{value:,.0f} ms"


def print_table(results: dict[str, Any]) -> None:
    if "throughput" in results:
        part = results["throughput"]
        print_rates(f"signup counting, {part['events']:,} UserCreated events, {part['partitions']} partitions",
                    "pipeline", "vs (a)", part["pipelines"])
        goals = part["goals"]
        print(f"goal (d) >= 60% of (a): {'met' if goals['worker_at_least_60pct_of_raw'] else 'NOT met'}; "
              f"(d) ahead of (b): {'met' if goals['worker_ahead_of_quix'] else 'NOT met'}")
    if "producer" in results:
        part = results["producer"]
        print_rates(f"producing {part['events']:,} Avro UserCreated events to {part['partitions']} partitions",
                    "producer", "vs raw", part["producers"])
        goals = [f"{name} {'met' if met else 'NOT met'}"
                 for name, met in part["goal_90pct"].items() if name != producer_throughput.RAW]
        print(f"goal >= 90% of raw: {', '.join(goals)}")
    if "latency" in results:
        part = results["latency"]
        print(f"\nend-to-end latency through the streams worker, {part['seconds']:g} s offered per run "
              f"(+ up to {part['drain_s']:g} s to finish);\n{part['definition']}:")
        print("| offered | achieved | p50 | p99 | p99 runs | events not done |\n|---|---|---|---|---|---|")
        for rate, line in part["rates"].items():
            bound = line["not_done"] > 0
            runs = ", ".join(ms(value, bound) for value in line["p99_runs_ms"])
            print(f"| {rate} | {line['offered_per_s']:,.0f}/s | {ms(line['p50_ms'], bound)} "
                  f"| {ms(line['p99_ms'], bound)} | {runs} | {line['not_done']:,} of {line['events']:,} |")
        if any(line["not_done"] for line in part["rates"].values()):
            print("events not done when the watch ended count as done then: '>=' marks a lower bound")
    if "memory" in results:
        part = results["memory"]
        peak = part["peak_rss_mib"]
        print(f"\nstreams worker holding a {part['keys']:,}-key engagement table: peak RSS (VmHWM) median "
              f"{peak['median']:,.0f} MiB (runs {peak['min']:,.0f}..{peak['max']:,.0f}); "
              f"table built in {part['build_s']['median']:,.0f} s")


def keep_logs(home: Path, kept: Path) -> None:
    """The logs of a failed run outlive its temporary directory."""
    kept.mkdir(parents=True, exist_ok=True)
    for log in home.glob("*.log"):
        shutil.copy(log, kept / log.name)
    print(f"logs kept in {kept}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--events", type=int, default=1_000_000, help="events for throughput and producer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--latency-rates", type=lambda text: [float(rate) for rate in text.split(",")],
                        default=[1000.0, 10000.0], help="signups/s offered, comma-separated")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="how long each rate is offered")
    parser.add_argument("--latency-drain", type=float, default=60.0,
                        help="seconds the worker gets after the offered load before events count as not done")
    parser.add_argument("--memory-keys", type=int, default=1_000_000)
    args = parser.parse_args()
    parts = args.only.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so every process started here is stopped

    python = peer_pipelines.peers_python() if "throughput" in parts else None
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "compare.json"
    earlier = json.loads(out.read_text()) if out.exists() else {}
    results: dict[str, Any] = {part: earlier[part] for part in PARTS if part in earlier and part not in parts}
    with scratch_broker() as (home, bootstrap):
        run_part: dict[str, Callable[[], dict[str, Any]]] = {
            "throughput": lambda: throughput(bootstrap, home, args, python),
            "producer": lambda: producer(bootstrap, args),
            "latency": lambda: latencies(bootstrap, home, args),
            "memory": lambda: memory(bootstrap, home, args),
        }
        try:
            for part in (part for part in PARTS if part in parts):
                print(f"{part}...", flush=True)
                started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                results[part] = {"started": started, "repeat": args.repeat, **run_part[part]()}
                out.write_text(json.dumps(results, indent=2))
        except BaseException:
            keep_logs(home, RESULTS / "compare-logs")
            raise
    print_table(results)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
