"""Signups per UTC day, as RocksDB-backed stream state.

The source topic is keyed by user id, so one day's signups arrive on every partition. Each
partition therefore keeps its own partial count per day, under a key that names the partition:
a key is only ever written from events of its own partition, which keeps the changelog, the
local store and Kafka transactions in step. Readers add the partials up.

Events are folded in batches, so a table write (and its changelog record) covers many events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, MutableMapping

import faust

from streams.app import app, settings, topics
from streams.batching import writes_for
from streams.events import UserCreated
from streams.retry import meant_for, read_headers

AGENT = "signups"

signup_partials = app.Table(
    "signup-partials",
    default=int,
    key_type=str,
    value_type=int,
    partitions=settings.topics.partitions,
    help="Signups per 'day/partition': one partial count per UTC day and source partition.",
)


def partial_key(day: str, partition: int) -> str:
    return f"{day}/{partition}"


def signups_by_day(values: Iterable[object]) -> Counter[str]:
    """Count UserCreated events per UTC day of their creation."""
    return Counter(value.envelope.created_day() for value in values if isinstance(value, UserCreated))


def add_partials(table: MutableMapping[str, int], per_day: Counter[str], partition: int) -> None:
    for day, count in per_day.items():
        table[partial_key(day, partition)] += count


def sum_partials(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Per-day totals from partial counts, days in order."""
    per_day: Counter[str] = Counter()
    for key, count in items:
        per_day[key.rpartition("/")[0]] += count
    return dict(sorted(per_day.items()))


@app.agent(topics.users, isolated_partitions=True)
async def count_signups(stream: faust.StreamT) -> None:
    """One actor per partition, so every batch comes from one partition and is written to it.

    Other events (and undecodable ones, which the users agent dead-letters) count for nothing
    here, and neither do retries addressed to another agent: this one counted them the first time.
    """
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):
        with writes_for(batch) as partition:
            ours = (event.value for event in batch if meant_for(read_headers(event.headers), AGENT))
            add_partials(signup_partials, signups_by_day(ours), partition)
