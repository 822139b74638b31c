"""Dead letters: stored from the dead-letter topic, listed, shown, replayed to their origin and purged.

A dead letter keeps the event's bytes, key and headers exactly as they were, so a replay sends
the very event that failed. Replayed events are addressed to the agent that gave up on them, and
that agent's idempotent handlers make sure a replayed event is processed once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from streams.codec import EventCodec
from streams.db.engine import CONFLICT_INSERTS, dialect
from streams.db.models import DeadLetter
from streams.events import UndecodableEvent
from streams.retry import (
    ATTEMPTS, ERROR_MESSAGE, ERROR_TYPE, FAILED_AT, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC, REPLAY_OF,
    ROUTING_HEADERS, TARGET_AGENT, TRACEBACK, write_headers,
)


def optional_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "")
    return int(value) if value.lstrip("-").isdigit() else None


def dead_letter_from(
    topic: str, partition: int, offset: int, key: bytes | None, payload: bytes, headers: Mapping[str, str],
    codec: EventCodec,
) -> DeadLetter:
    """The row for one dead-letter record; the event's id and type when its bytes can be read."""
    event = codec.decode(payload)
    failed_at_ms = optional_int(headers, FAILED_AT)
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        origin_topic=headers.get(ORIGIN_TOPIC),
        origin_partition=optional_int(headers, ORIGIN_PARTITION),
        origin_offset=optional_int(headers, ORIGIN_OFFSET),
        target_agent=headers.get(TARGET_AGENT),
        event_id=None if isinstance(event, UndecodableEvent) else str(event.id),
        event_type=None if isinstance(event, UndecodableEvent) else type(event).__name__,
        key=key,
        payload=payload,
        headers=dict(headers),
        error_type=headers.get(ERROR_TYPE, "Unknown"),
        error_message=headers.get(ERROR_MESSAGE, ""),
        traceback=headers.get(TRACEBACK),
        attempts=optional_int(headers, ATTEMPTS) or 0,
        failed_at=datetime.fromtimestamp(failed_at_ms / 1000, timezone.utc) if failed_at_ms else datetime.now(timezone.utc),
        replay_count=0,
    )


#: Per backend, the INSERT that skips a dead-letter record already stored (redelivered after a crash, by its
#: unique topic, partition and offset) and returns the ids of the new rows. Built once: executed with the
#: batch's rows as parameters it is compiled once per worker, where one with the rows as values was
#: compiled anew for every batch.
CONFLICT_FREE_INSERTS = {
    name: insert(DeadLetter)
    .on_conflict_do_nothing(index_elements=["topic", "partition", "offset"])
    .returning(DeadLetter.id, DeadLetter.topic, DeadLetter.partition, DeadLetter.offset)
    for name, insert in CONFLICT_INSERTS.items()
}
STORED_COLUMNS = [column.key for column in DeadLetter.__table__.columns if column.key not in ("id", "created_at")]


async def store(sessions: async_sessionmaker[AsyncSession], rows: Sequence[DeadLetter]) -> list[DeadLetter]:
    """Insert, in one transaction, the rows whose dead-letter record is not stored yet; those rows, with ids."""
    async with sessions.begin() as session:
        result = await session.execute(
            CONFLICT_FREE_INSERTS[dialect(session)],
            [{key: getattr(row, key) for key in STORED_COLUMNS} for row in rows],
        )
        new_ids = {(topic, partition, offset): id_ for id_, topic, partition, offset in result}
    stored = []
    for row in rows:
        if (row.topic, row.partition, row.offset) in new_ids:
            row.id = new_ids[(row.topic, row.partition, row.offset)]
            stored.append(row)
    return stored


@dataclass(frozen=True)
class DeadLetterQuery:
    """Which dead letters a command acts on; every given condition must hold."""

    ids: Sequence[int] = ()
    topic: str | None = None
    event_type: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_empty(self) -> bool:
        return not (self.ids or self.topic or self.event_type or self.error or self.since or self.until)

    def statement(self) -> Select[DeadLetter]:
        query = select(DeadLetter).order_by(DeadLetter.id)
        if self.ids:
            query = query.where(DeadLetter.id.in_(self.ids))
        if self.topic:
            query = query.where(DeadLetter.origin_topic == self.topic)
        if self.event_type:
            query = query.where(DeadLetter.event_type == self.event_type)
        if self.error:
            query = query.where(
                DeadLetter.error_type.contains(self.error, autoescape=True)
                | DeadLetter.error_message.contains(self.error, autoescape=True)
            )
        if self.since:
            query = query.where(DeadLetter.failed_at >= self.since)
        if self.until:
            query = query.where(DeadLetter.failed_at < self.until)
        return query


def find(session: Session, query: DeadLetterQuery) -> list[DeadLetter]:
    return list(session.scalars(query.statement()))


def purge(session: Session, query: DeadLetterQuery) -> int:
    """Delete the matching dead letters; the number deleted."""
    ids = [row.id for row in find(session, query)]
    if ids:
        session.execute(delete(DeadLetter).where(DeadLetter.id.in_(ids)))
    return len(ids)


def replay_headers(row: DeadLetter) -> list[tuple[str, bytes]]:
    """The stored headers without the last trip's routing, plus which dead letter this replays."""
    kept = {name: value for name, value in row.headers.items() if name not in ROUTING_HEADERS}
    return write_headers({**kept, REPLAY_OF: row.id})


def mark_replayed(rows: Sequence[DeadLetter]) -> None:
    now = datetime.now(timezone.utc)
    for row in rows:
        row.replayed_at = now
        row.replay_count += 1
