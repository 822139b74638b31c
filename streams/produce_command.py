"""``streams produce``: demo events, or events from a JSON-lines file, with a progress bar; ``--delay`` sends
them through the delay tiers.

A file has one event per line: ``{"type": "UserCreated", "user_id": "u1", ...}``, the type by
class name (or Avro full name) and the event's fields beside it. Every line is checked and
encoded before the first is sent, so a bad line stops the run with its line number and nothing
half-sent.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from streams.cli_types import positive_int, positive_seconds
from streams.codec import EventValidationError
from streams.demo import demo_activity, demo_signups
from streams.errors import StreamsError
from streams.events import EVENT_TYPES, Event
from streams.producer import EventProducer
from streams.settings import load_settings

BY_CLASS_NAME = {cls.__name__: cls for cls in EVENT_TYPES.values()}
BATCH = 1000


class EventFileError(StreamsError):
    """A line of an events file is not an event."""


def events_from_file(path: Path) -> Iterator[Event]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise EventFileError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventFileError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict) or "type" not in record:
            raise EventFileError(f"{path}:{number}: expected an object with a \"type\"")
        name = record.pop("type")
        event_type = BY_CLASS_NAME.get(name) or EVENT_TYPES.get(name)
        if event_type is None:
            raise EventFileError(f"{path}:{number}: unknown event type {name!r}; known: {', '.join(sorted(BY_CLASS_NAME))}")
        try:
            yield event_type.new(record.pop("metadata", None), **record)
        except TypeError as exc:
            raise EventFileError(f"{path}:{number}: {name}: {exc}") from None


def demo_events(count: int, seed: int) -> list[Event]:
    """``count`` signups over the last week, then follows and activity on a post per 20 users."""
    rng = random.Random(seed)
    signups = demo_signups(count, days=7, rng=rng)
    return [*signups, *demo_activity([event.user_id for event in signups], max(1, count // 20), rng)]


def produce(args: argparse.Namespace) -> int:
    events = list(events_from_file(args.file)) if args.file else demo_events(args.demo, args.seed)
    settings = load_settings()
    with EventProducer(settings) as producer:
        try:
            encoded = [producer.encode(event) for event in events]
        except EventValidationError as exc:
            raise EventFileError(f"not sent, an event is invalid: {exc}") from None
        due = time.time() + args.delay if args.delay else None
        with tqdm(total=len(encoded), unit="ev", disable=args.quiet) as progress:
            for start in range(0, len(encoded), BATCH):
                batch = encoded[start:start + BATCH]
                producer.send_encoded(batch, due)
                progress.update(len(batch))
    when = f", due at {datetime.fromtimestamp(due, timezone.utc).isoformat(timespec='seconds')}" if due else ""
    print(f"sent {len(events):,} events to {settings.kafka.brokers}{when}")
    return 0


def add_produce_command(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser("produce", help="publish demo events, or events from a JSON-lines file")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--demo", type=positive_int, metavar="N", help="N demo signups plus follows and post activity")
    source.add_argument("--file", type=Path, help="one JSON event per line: {\"type\": \"UserCreated\", ...}")
    command.add_argument("--delay", type=positive_seconds, metavar="SECONDS",
                         help="delivered no earlier than SECONDS from now, through the delay tiers")
    command.add_argument("--seed", type=int, default=7, help="random seed for demo events")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    command.set_defaults(run=produce)
