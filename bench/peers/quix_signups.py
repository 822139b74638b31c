"""The signup count written with Quix Streams, run by bench.compare in the peers' own virtualenv.

Quix Streams 3.28 pins confluent-kafka below 2.13, which the project's virtualenv cannot hold, so
bench.compare runs this module with the virtualenv's Python (cwd: the repository). Each record
is decoded as the raw loop decodes it (bench.peers.single_object) and counted per UTC day in Quix's
RocksDB state, defaults otherwise (at-least-once, a checkpoint every 5 s). Quix keeps state per
partition and message key; every record gets one key, so the state holds a count per partition
and day, as the worker's partials do, and nothing is re-keyed through a repartition topic. Once
--events records are counted it writes {"events", "seconds", "events_per_s"} to --result and stops.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from quixstreams import Application, State
from quixstreams.models.serializers import Deserializer, SerializationContext

from bench.peers import write_rate
from bench.peers.single_object import read_single_object, signup_day


class SingleObjectAvro(Deserializer):
    """The project's framing, read with fastavro, exactly as the raw loop does."""

    def __init__(self, writers: dict[bytes, Any]) -> None:
        super().__init__()
        self.writers = writers

    def __call__(self, value: bytes, ctx: SerializationContext) -> dict[str, Any]:
        return read_single_object(value, self.writers)


class OneKey(Deserializer):
    """Every record under one key, so state is scoped by partition alone."""

    def __call__(self, value: bytes, ctx: SerializationContext) -> str:
        return "signups"


class Count:
    """Counts signups per day into the state, and stops the application after the last expected one."""

    def __init__(self, app: Application, expected: int) -> None:
        self.app = app
        self.expected = expected
        self.seen = 0
        self.started = self.finished = 0.0

    def __call__(self, record: dict[str, Any], state: State) -> None:
        if not self.seen:
            self.started = time.perf_counter()
        day = signup_day(record)
        state.set(day, state.get(day, 0) + 1)
        self.seen += 1
        if self.seen == self.expected:
            self.finished = time.perf_counter()
            self.app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--writers", type=Path, required=True, help="JSON: writer schemas by fingerprint (hex)")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()

    writers = {bytes.fromhex(fingerprint): parse_schema(schema)
               for fingerprint, schema in json.loads(args.writers.read_text()).items()}
    app = Application(
        broker_address=args.bootstrap, consumer_group=f"quix-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
        state_dir=args.state_dir, loglevel="WARNING",
    )
    topic = app.topic(args.topic, key_deserializer=OneKey(), value_deserializer=SingleObjectAvro(writers))
    count = Count(app, args.events)
    app.dataframe(topic).update(count, stateful=True)
    app.run()
    if count.seen < args.events:
        raise SystemExit(f"stopped after {count.seen} of {args.events} events")
    write_rate(args.result, args.events, count.finished - count.started)


if __name__ == "__main__":
    main()
