"""Source messages as typed events, for the folds that need more than one field of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from confluent_kafka import Message

from streams.app import codec
from streams.events import Event, UndecodableEvent
from streams.retry import meant_for, read_headers


def events_for(messages: Sequence[Message], agent: str) -> list[tuple[int, Event | UndecodableEvent]]:
    """(offset, event) of each message but retries addressed to another agent: ``agent`` folded those the first
    time. Undecodable ones stay undecodable: the folds pass them over, and the family's agent dead-letters them."""
    return [
        (cast(int, message.offset()), codec.decode(cast(bytes, message.value())))
        for message in messages
        if meant_for(read_headers(cast(list[tuple[str, bytes | None]] | None, message.headers())), agent)
    ]
