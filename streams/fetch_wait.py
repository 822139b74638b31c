"""Faust's worker consumer waits up to 1.5 s for data on each fetch; here it waits ``kafka.fetch_max_wait``.

aiokafka keeps one fetch request in flight per broker, and leaves out of it every partition whose
fetched records have not all been taken yet. A partition whose records were being handled when
the request went out is fetched again only once that request returns, and with no data arriving
on the partitions in it, the broker holds it for the whole wait. A worker fed as it went paused
about a second each time it emptied a batch: in ``bench.retries`` up to three such pauses in a
run's first seconds, a tenth of a short run. A short wait costs an idle worker a few empty
fetches a second.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


def cap_fetch_wait(seconds: float) -> None:
    """Make the worker consumers created from now on wait at most ``seconds`` for data on each fetch."""
    original = getattr(AIOKafkaConsumerThread._create_worker_consumer, "__wrapped__",
                       AIOKafkaConsumerThread._create_worker_consumer)

    def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = round(seconds * 1000)
        return consumer

    create_worker_consumer.__wrapped__ = original  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
