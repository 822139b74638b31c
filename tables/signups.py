"""Signups per UTC day, as RocksDB-backed stream state folded by the state engine beside the agents.

The source topic is keyed by user id, so one day's signups arrive on every partition. Each
partition therefore keeps its own partial count per day, under a key that names the partition:
a key is only ever written from events of its own partition. Readers add the partials up.

Counting is a pure fold of user-events, so it runs in the state engine (streams.state) rather
than through a Faust agent: batches straight from librdkafka, no typed event objects, one
changelog record per changed day and partition per transaction. Each partial also remembers the
last source offset it counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, cast

from confluent_kafka import Message

from streams import metrics
from streams.app import codec, settings
from streams.events import UserCreated
from streams.state.engine import State
from streams.state.outputs import Outputs
from streams.retry import meant_for, read_headers
from streams.topics import SIGNUP_PARTIALS, changelog_topic_name

AGENT = "signups"


class DayCount(NamedTuple):
    """Signups one UTC day from one partition, and the last offset of that partition counted."""

    count: int = 0  # type: ignore[assignment]  # shadows tuple.count; the stored JSON names it so
    offset: int = -1

    def dumps(self) -> bytes:
        return json.dumps(self._asdict()).encode()

    @classmethod
    def loads(cls, raw: bytes) -> DayCount:
        return cls(**json.loads(raw))


def partial_key(day: str, partition: int) -> str:
    return f"{day}/{partition}"


def count_signups_by_day(
    partials: Mapping[str, DayCount], signups: Iterable[tuple[int, str]], partition: int
) -> dict[str, DayCount]:
    """The partials these (offset, UTC day) signups change; signups at or below a partial's offset are already in it."""
    changed: dict[str, DayCount] = {}
    for offset, day in signups:
        key = partial_key(day, partition)
        current = changed.get(key) or partials.get(key) or DayCount()
        if offset > current.offset:
            changed[key] = DayCount(current.count + 1, offset)
    return changed


def sum_partials(items: Iterable[tuple[str, DayCount]]) -> dict[str, int]:
    """Per-day totals from partial counts, days in order."""
    per_day: Counter[str] = Counter()
    for key, partial in items:
        per_day[key.rpartition("/")[0]] += partial.count
    return dict(sorted(per_day.items()))


def signup_days(messages: Sequence[Message]) -> Iterator[tuple[int, str]]:
    """(offset, UTC day) of each UserCreated among ``messages``.

    Other events count for nothing, and neither do undecodable ones (the users agent
    dead-letters those) or retries addressed to another agent: this fold counted them the first time.
    """
    for message in messages:
        headers = cast(list[tuple[str, bytes | None]] | None, message.headers())
        if headers and not meant_for(read_headers(headers), AGENT):
            continue
        try:
            record = codec.read(cast(bytes, message.value()), UserCreated.schema)
        except Exception:
            continue
        if record is not None:
            yield cast(int, message.offset()), record["envelope"]["created_at"].date().isoformat()


def fold_signups(
    partials: Mapping[str, DayCount], partition: int, messages: Sequence[Message], outputs: Outputs,
) -> dict[str, DayCount]:
    with metrics.batch_folded(cast(str, messages[-1].topic()), AGENT, len(messages)):
        return count_signups_by_day(partials, signup_days(messages), partition)


signup_partials: State[DayCount] = State(
    SIGNUP_PARTIALS, settings.topics.user_events, changelog_topic_name(settings.kafka.group_id, SIGNUP_PARTIALS),
    fold_signups, DayCount.dumps, DayCount.loads,
)
