"""The loop every family agent runs: decode, hand the event to its handler, never stop on one event.

Bytes no schema can read are reported with their exact position. A handler's typed error is
logged with the event id and the stream goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import faust
from faust.types import Message

from streams.errors import StreamsError
from streams.events import Event, UndecodableEvent

logger = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]


def report_undecodable(message: Message, event: UndecodableEvent) -> None:
    logger.error(
        "skipping undecodable event topic=%s partition=%d offset=%d bytes=%d reason=%s",
        message.topic, message.partition, message.offset, len(event.payload), event.reason,
    )


async def handle_each(stream: faust.StreamT, handle: Handler) -> None:
    async for event in stream.events():
        value = event.value
        if isinstance(value, UndecodableEvent):
            report_undecodable(event.message, value)
            continue
        try:
            await handle(value)
        except StreamsError as exc:
            logger.error("skipping event id=%s type=%s: %s", value.id, type(value).__name__, exc)
        except Exception:
            logger.exception("skipping event id=%s type=%s after an unexpected error", value.id, type(value).__name__)
