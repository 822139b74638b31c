"""Reads consumer-group lag from four threads as fast as it can, from the first moments of a fresh broker.

Run as ``python -m tests.reliability.lag_probe BOOTSTRAP SECONDS``, in a process of its own so that
a crash in a client library ends only this process; prints the answers and errors it counted as JSON.
Every group is new to the broker, so its coordinator is still being loaded when it is first asked.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

from confluent_kafka import KafkaException

from streams.admin import ensure_topics
from streams.kafka.lag import GroupReader
from streams.settings import load_settings

THREADS = 4
GROUPS = 32
TOPIC = "lag-probe"


def main(bootstrap: str, seconds: float) -> None:
    settings = load_settings(kafka={"brokers": bootstrap})
    ensure_topics(settings.kafka, {TOPIC: {}}, partitions=4, replication_factor=1)
    reader = GroupReader(settings.kafka)
    groups = [f"probe-{uuid.uuid4().hex[:8]}" for _ in range(GROUPS)]
    counts = {"answered": 0, "broker_errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def ask(first: int) -> None:
        for n in range(first, 1_000_000, THREADS):
            if time.monotonic() >= deadline:
                return
            try:
                reader.lag(groups[n % GROUPS], [TOPIC])
                outcome = "answered"
            except KafkaException:
                outcome = "broker_errors"
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader.close()
    print(json.dumps(counts))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
