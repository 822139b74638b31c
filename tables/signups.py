"""Signups per UTC day, as RocksDB-backed stream state.

The source topic is keyed by user id, so one day's signups arrive on every partition. Each
partition therefore keeps its own partial count per day, under a key that names the partition:
a key is only ever written from events of its own partition, which keeps the changelog, the
local store and Kafka transactions in step. Readers add the partials up.

Each partial remembers the last source offset it counted, so an event delivered again (after a
rebalance or a crash) is not counted twice. Events are folded in batches, so a table write (and
its changelog record) covers many events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import faust

from streams import metrics
from streams.app import app, priorities, settings, topics
from streams.batching import writes_for
from streams.events import UserCreated
from streams.retry import meant_for, read_headers
from streams.topics import SIGNUP_PARTIALS

AGENT = "signups"


class DayCount(faust.Record, serializer="json", include_metadata=False):
    """Signups one UTC day from one partition, and the last offset of that partition counted."""

    count: int = 0
    offset: int = -1


signup_partials = app.Table(
    SIGNUP_PARTIALS,
    default=DayCount,
    key_type=str,
    value_type=DayCount,
    partitions=settings.topics.partitions,
    help="Signups per 'day/partition': one partial count per UTC day and source partition.",
)


def partial_key(day: str, partition: int) -> str:
    return f"{day}/{partition}"


def count_signups_by_day(
    partials: Mapping[str, DayCount], events: Iterable[tuple[int, object]], partition: int
) -> dict[str, DayCount]:
    """The partials these (offset, event) pairs change; events at or below a partial's offset are already in it."""
    changed: dict[str, DayCount] = {}
    for offset, value in events:
        if not isinstance(value, UserCreated):
            continue
        key = partial_key(value.envelope.created_day(), partition)
        current = changed.get(key) or partials.get(key) or DayCount()
        if offset > current.offset:
            changed[key] = DayCount(count=current.count + 1, offset=offset)
    return changed


def sum_partials(items: Iterable[tuple[str, DayCount]]) -> dict[str, int]:
    """Per-day totals from partial counts, days in order."""
    per_day: Counter[str] = Counter()
    for key, partial in items:
        per_day[key.rpartition("/")[0]] += partial.count
    return dict(sorted(per_day.items()))


@app.agent(topics.users, isolated_partitions=True)
async def count_signups(stream: faust.StreamT) -> None:
    """One actor per partition, so every batch comes from one partition and is written to it.

    Other events (and undecodable ones, which the users agent dead-letters) count for nothing
    here, and neither do retries addressed to another agent: this one counted them the first time.
    """
    async for batch in stream.take_events(settings.state.batch_size, within=settings.state.batch_window):
        ours = [(event.message.offset, event.value) for event in batch if meant_for(read_headers(event.headers), AGENT)]
        async with priorities.turn("user", len(batch)):
            with metrics.batch_handled(batch, AGENT), writes_for(batch) as partition:
                for key, partial in count_signups_by_day(signup_partials, ours, partition).items():
                    signup_partials[key] = partial
