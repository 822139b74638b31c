"""What a fold sends besides its state: records for another topic, and dead letters.

They are produced in the transaction that commits the fold's state and source offsets, so they
become visible exactly when the state does, and never for a batch whose commit was refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Message

from streams import metrics
from streams.errors import PermanentError
from streams.retry import dead_letter_headers, failure_headers, read_headers, write_headers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Outputs:
    """The records one source partition's folds send on before the next commit."""

    def __init__(self, dead_letters: str) -> None:
        self.dead_letters = dead_letters
        self.records: list[Outgoing] = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        """A record for ``topic``, partitioned by ``key`` as every producer of the service partitions (murmur2)."""
        self.records.append(Outgoing(topic, key, value))

    def dead_letter(self, message: Message, agent: str, error: PermanentError) -> None:
        """``message`` to the dead-letter topic whole, as the agents send what they cannot handle."""
        topic, partition, offset = cast(str, message.topic()), cast(int, message.partition()), cast(int, message.offset())
        headers = read_headers(cast(list[tuple[str, bytes | None]] | None, message.headers()))
        routing = failure_headers(headers, 1, topic, partition, offset, agent, error)
        self.records.append(Outgoing(
            self.dead_letters, message.key(), message.value(), write_headers(dead_letter_headers(routing, error)),
        ))
        metrics.EVENTS_DEAD_LETTERED.labels(topic, agent, type(error).__name__).inc()
        logger.error(
            "dead-lettered a record topic=%s partition=%d offset=%d agent=%s: %s: %s",
            topic, partition, offset, agent, type(error).__name__, error,
        )
