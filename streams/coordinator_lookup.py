"""A transactional producer keeps looking for its coordinator while the broker cannot be reached.

aiokafka 0.14's producer looks up the transaction or group coordinator again whenever the one it
knew stops answering as coordinator, as happens while a broker shuts down. The lookup retries
"coordinator not available", "node not ready" and timeouts, but a lost or refused connection
ends the producer's send loop with "Unexpected error during batch delivery": Faust's consumer
then crashes and the worker exits. That happened when the broker stopped in the middle of an
offset commit under exactly-once. A connection error is retriable like the others, so the
lookup now waits and tries again until the broker is back, as every other request of the
producer already does.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError
from aiokafka.producer.sender import Sender

log = logging.getLogger(__name__)

#: aiokafka's own lookup, which the mend calls and goes on calling after a retriable error.
aiokafka_find_coordinator = Sender._find_coordinator


def retriable_cause(error: KafkaError) -> KafkaError | None:
    """The retriable Kafka error that the lookup wrapped into ``error``, if that is what it did."""
    cause = error.__cause__
    return cause if isinstance(cause, KafkaError) and cause.retriable else None


async def find_coordinator_until_reachable(self: Sender, coordinator_type: int, coordinator_key: str) -> int:
    while True:
        try:
            return await aiokafka_find_coordinator(self, coordinator_type, coordinator_key)
        except KafkaError as error:
            cause = retriable_cause(error)
            if cause is None:
                raise
            log.warning("Coordinator lookup for %s failed (%r); trying again", coordinator_key, cause)
            await self.client.force_metadata_update()
            await asyncio.sleep(self._retry_backoff)


def retry_coordinator_lookups() -> None:
    Sender._find_coordinator = find_coordinator_until_reachable
