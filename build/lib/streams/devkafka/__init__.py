"""Local development servers from Maven Central: an Apache Kafka broker and a Schema Registry."""

from streams.devkafka.broker import BrokerError, BrokerStatus, LocalBroker
from streams.devkafka.process import LocalServerError, MissingToolError
from streams.devkafka.registry import LocalSchemaRegistry

__all__ = ["BrokerError", "BrokerStatus", "LocalBroker", "LocalSchemaRegistry", "LocalServerError", "MissingToolError"]
