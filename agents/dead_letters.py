"""The dead-letter agent: every event the service gave up on is stored, counted and alerted on.

It is the last stop, so it never gives up itself: a database that cannot be reached is tried
again with backoff, holding this partition (and only this one) until the rows are stored. Rows
are stored in batches, one transaction each, so a burst of dead letters costs the worker little.
"""

from __future__ import annotations

import asyncio
import logging

import faust
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from streams import metrics
from streams.app import app, codec, retry_topics, sessions
from streams.dead_letters import dead_letter_from, store
from streams.db.models import DeadLetter
from streams.retry import read_headers

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


BATCH = 200
BATCH_WITHIN = 0.2


async def store_with_backoff(sessions: async_sessionmaker[AsyncSession], rows: list[DeadLetter]) -> list[DeadLetter]:
    delay = 0.5
    while True:
        try:
            return await store(sessions, rows)
        except Exception as exc:
            logger.error(
                "cannot store %d dead letter(s) from offset %d yet (%s); trying again in %.1fs",
                len(rows), rows[0].offset, exc, delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


@app.agent(retry_topics.dead_letters)
async def store_dead_letters(stream: faust.StreamT) -> None:
    async for events in stream.take_events(BATCH, within=BATCH_WITHIN):  # type: ignore[attr-defined]
        rows = [
            dead_letter_from(
                event.message.topic, event.message.partition, event.message.offset, event.message.key,
                event.message.value or b"", read_headers(event.headers), codec,
            )
            for event in events
        ]
        for row in await store_with_backoff(sessions, rows):
            metrics.DEAD_LETTERS_STORED.labels(row.origin_topic or "", row.error_type).inc()
            logger.error(
                "ALERT dead letter stored id=%d event_id=%s type=%s origin=%s/%s/%s agent=%s attempts=%d error=%s: %s",
                row.id, row.event_id, row.event_type, row.origin_topic, row.origin_partition, row.origin_offset,
                row.target_agent, row.attempts, row.error_type, row.error_message,
            )
