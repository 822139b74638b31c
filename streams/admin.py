"""Topic administration through confluent-kafka's admin client, with one clear error per failure.

A topic is ready once the broker's metadata names a leader for each of its partitions. A topic
just created can still be missing from the metadata a broker serves for a moment, and a consumer
group whose leader assigns partitions in that moment leaves the topic out. So ``ensure_topics``
returns only once every topic it was given is ready.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.errors import BrokerUnavailableError
from streams.kafka_clients import confluent_config
from streams.settings import KafkaSettings


def ensure_topics(
    kafka: KafkaSettings, configs: Mapping[str, Mapping[str, str]], partitions: int, replication_factor: int, timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet, with their configuration, and wait until all are ready;
    return the names created."""
    admin = AdminClient(confluent_config(kafka, log_level=0))
    existing = admin.list_topics(timeout=timeout).topics
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=dict(config))
        for name, config in configs.items()
        if name not in existing
    ]
    created = []
    if missing:
        for name, future in admin.create_topics(missing, request_timeout=timeout).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise BrokerUnavailableError(f"cannot create topic {name!r}: {exc.args[0].str()}") from None
    wait_until_ready(admin, configs, timeout)
    return created


def unready_topics(admin: AdminClient, names: Iterable[str], timeout: float) -> list[str]:
    """Those of ``names`` whose partitions the broker's metadata does not all give a leader."""
    topics = admin.list_topics(timeout=timeout).topics
    return [
        name for name in names
        if name not in topics or topics[name].error is not None or not topics[name].partitions
        or any(partition.leader < 0 for partition in topics[name].partitions.values())
    ]


def wait_until_ready(admin: AdminClient, names: Iterable[str], timeout: float) -> None:
    """Return once the broker's metadata gives every partition of ``names`` a leader."""
    deadline = time.monotonic() + timeout
    while unready := unready_topics(admin, names, timeout):
        if time.monotonic() >= deadline:
            raise BrokerUnavailableError(f"topics not ready after {timeout:.0f}s: {', '.join(unready)}")
        time.sleep(0.05)
