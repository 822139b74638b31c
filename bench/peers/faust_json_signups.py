"""The signup count as a plain faust-streaming app: JSON events, a RocksDB table, at-least-once.

Run by bench.compare with the project's virtualenv (cwd: the repository). Faust's defaults
otherwise: one agent over every partition, a table write (and changelog record) per event.
Counts are kept per day and source partition, as the worker's partials are, so no key is written
from two partitions. Once --events events are counted it writes {"events", "seconds",
"events_per_s"} to --result; it keeps running until it is stopped.
"""

import argparse
import time
import uuid
from datetime import datetime
from pathlib import Path

import faust

from bench.peers import write_rate


# No ``from __future__ import annotations``: Faust reads the field types at class creation, and a
# string annotation would leave the nested envelope a dict. The envelope's "type" is left out: a
# field of that name leaves it a dict too (faust-streaming 0.15.3).
class Envelope(faust.Record, isodates=True, include_metadata=False):
    id: str
    created_at: datetime
    attempts: int
    metadata: dict[str, str]


class UserCreated(faust.Record, isodates=True, include_metadata=False):
    envelope: Envelope
    user_id: str
    email: str
    username: str
    full_name: str | None = None


class Progress:
    """Times the count from the first event to the last expected one, and writes the rate once."""

    def __init__(self, expected: int, result: Path) -> None:
        self.expected = expected
        self.result = result
        self.seen = 0
        self.started = 0.0

    def counted(self) -> None:
        if not self.seen:
            self.started = time.perf_counter()
        self.seen += 1
        if self.seen == self.expected:
            write_rate(self.result, self.seen, time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()

    app = faust.App(
        f"faust-json-{uuid.uuid4().hex[:8]}", broker=f"kafka://{args.bootstrap}", store="rocksdb://",
        datadir=args.data_dir, topic_partitions=args.partitions, web_enabled=False,
    )
    signups = app.topic(args.topic, key_serializer="raw", value_type=UserCreated, value_serializer="json")
    per_day = app.Table("signups-per-day", default=int, partitions=args.partitions)
    progress = Progress(args.events, args.result)

    @app.agent(signups)
    async def count_signups(stream: faust.StreamT) -> None:
        async for event in stream.events():
            day = event.value.envelope.created_at.date().isoformat()
            per_day[f"{day}/{event.message.partition}"] += 1
            progress.counted()

    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


if __name__ == "__main__":
    main()
