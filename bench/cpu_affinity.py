"""What pinning a worker to one CPU (``worker.cpus``) does to its email rate and its CPU use, side by side.

A fresh worker sends N newsletter emails from one partition to a real SMTP server (the healthy
run of ``bench.retries``), in turns with nothing pinned and with ``worker.cpus`` set to one CPU;
the broker and this process run on any CPU in both, so only the worker's own threads differ. The
turns alternate which goes first, so drift over the run weighs on both alike. Each run also reads
the worker's CPU time from /proc: the whole process and its event-loop thread, per email.

    .venv/bin/python -m bench.cpu_affinity --emails 5000 --repeat 3 --worker-cpu 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from bench.retries import healthy_throughput
from bench.workers import BenchDatabases, cpu_of_this_machine, scratch_broker
from streams.cli_types import positive_int

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=positive_int, default=5_000)
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--worker-cpu", type=cpu_of_this_machine, default=max(os.sched_getaffinity(0)))
    args = parser.parse_args()

    modes = {"any CPU": {}, f"CPU {args.worker_cpu}": {"STREAMS_WORKER__CPUS": str(args.worker_cpu)}}
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with scratch_broker() as (home, bootstrap):
        for turn in range(args.repeat):
            for mode in list(modes) if turn % 2 == 0 else reversed(modes):
                run = healthy_throughput(bootstrap, home, args.emails, 0, BenchDatabases(None), modes[mode])
                runs[mode].append({"rate": run.rate, "cpu_ms_per_email": run.cpu_s * 1000 / args.emails,
                                   "loop_ms_per_email": run.loop_cpu_s * 1000 / args.emails})
                print(f"  {mode:10} {run.rate:6.1f} emails/s", flush=True)

    print(f"{args.emails:,} emails from one partition, the worker on any CPU or pinned (median of {args.repeat}):")
    medians = {}
    for mode, results in runs.items():
        medians[mode] = {key: statistics.median(run[key] for run in results) for key in results[0]}
        rates = ", ".join(f"{run['rate']:.1f}" for run in results)
        print(f"  {mode:10} {medians[mode]['rate']:6.1f} emails/s (runs {rates}); "
              f"worker CPU {medians[mode]['cpu_ms_per_email']:.2f} ms per email, "
              f"its event loop {medians[mode]['loop_ms_per_email']:.2f} ms")
    free, pinned = (medians[mode]["rate"] for mode in modes)
    print(f"  pinned / any: {pinned / free:.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "cpu_affinity.json"
    out.write_text(json.dumps({"emails": args.emails, "worker_cpu": args.worker_cpu, "runs": runs, "medians": medians},
                              indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
