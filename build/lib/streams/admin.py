"""Topic administration through confluent-kafka's admin client, with one clear error per failure."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.errors import BrokerUnavailableError
from streams.kafka_clients import confluent_config
from streams.settings import KafkaSettings


def ensure_topics(
    kafka: KafkaSettings, configs: Mapping[str, Mapping[str, str]], partitions: int, replication_factor: int, timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet, with their configuration; return the names created."""
    admin = AdminClient(confluent_config(kafka, log_level=0))
    existing = admin.list_topics(timeout=timeout).topics
    missing = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=dict(config))
        for name, config in configs.items()
        if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerUnavailableError(f"cannot create topic {name!r}: {exc.args[0].str()}") from None
    return created
