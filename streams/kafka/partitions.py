"""Which partition a key lands in: murmur2 of its UTF-8 bytes, as Kafka's Java clients, librdkafka's
``murmur2_random`` and aiokafka place keys, so every producer of the service and every reader agree."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
