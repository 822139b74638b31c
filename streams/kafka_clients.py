"""Connection settings for the three Kafka client libraries the service uses, from one KafkaSettings.

Faust and the relay speak through aiokafka, the producer and the admin tools through
confluent-kafka; each spells the same security options its own way, so they are translated here
once. Passwords leave SecretStr only on their way into a client.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from confluent_kafka import KafkaError
from faust.types.auth import CredentialsT

from streams.errors import BrokerLoginError
from streams.settings import KafkaSecurity, KafkaSettings


def password_of(security: KafkaSecurity) -> str:
    return security.password.get_secret_value() if security.password else ""


def confluent_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """librdkafka properties: the brokers, the client id and the security options, plus ``extra``."""
    security = kafka.security
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.brokers, "client.id": kafka.client_id, "security.protocol": security.protocol,
    }
    if security.sasl:
        config.update({
            "sasl.mechanism": security.sasl_mechanism, "sasl.username": security.username,
            "sasl.password": password_of(security),
        })
    files = {"ssl.ca.location": security.ssl_cafile, "ssl.certificate.location": security.ssl_certfile,
             "ssl.key.location": security.ssl_keyfile}
    config.update({name: str(path) for name, path in files.items() if path is not None})
    return {**config, **extra}


class LoginWatch:
    """A confluent-kafka ``error_cb`` that notes a refused login, which librdkafka otherwise only retries."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.refusal: str | None = None

    def __call__(self, error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            self.refusal = error.str()

    def check(self) -> None:
        """Raise BrokerLoginError if the broker has refused the credentials."""
        if self.refusal is None:
            return
        security = self.kafka.security
        who = f"user {security.username!r} ({security.sasl_mechanism})" if security.sasl else f"{security.protocol} client"
        raise BrokerLoginError(f"Kafka at {self.kafka.brokers} refused the login of {who}: {self.refusal}")


def tls_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL: the configured CA (the system's if unset) and client certificate."""
    if not security.tls:
        return None
    return create_ssl_context(
        cafile=str(security.ssl_cafile) if security.ssl_cafile else None,
        certfile=str(security.ssl_certfile) if security.ssl_certfile else None,
        keyfile=str(security.ssl_keyfile) if security.ssl_keyfile else None,
    )


def aiokafka_security(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaConsumer and AIOKafkaProducer."""
    security = kafka.security
    options: dict[str, Any] = {"security_protocol": security.protocol, "ssl_context": tls_context(security)}
    if security.sasl:
        options.update({
            "sasl_mechanism": security.sasl_mechanism, "sasl_plain_username": security.username,
            "sasl_plain_password": password_of(security),
        })
    return options


def faust_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Faust's broker_credentials: SASL (over TLS for SASL_SSL), TLS alone, or none."""
    security = kafka.security
    if security.sasl:
        return faust.SASLCredentials(
            username=security.username, password=password_of(security),
            ssl_context=tls_context(security), mechanism=security.sasl_mechanism,
        )
    if security.tls:
        return faust.SSLCredentials(tls_context(security))
    return None
