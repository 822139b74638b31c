"""The service's exception tree: one root, so callers can catch everything we raise on purpose.

The retry policy routes on these types: a ``PermanentError`` goes straight to the dead-letter
topic, an ``EntityNotFoundError`` is retried a bounded number of times (the entity may still be
on its way), and anything else is retried with backoff up to the configured attempts.
"""


class StreamsError(Exception):
    """Root of every error the service raises deliberately."""


class PermanentError(StreamsError):
    """Retrying cannot help (bad data, an unknown template or format): dead-letter at once."""


class ConfigurationError(StreamsError):
    """A setting is missing or has a bad value; the message names the key."""


class BrokerUnavailableError(StreamsError):
    """No Kafka broker answered at the configured address."""


class BrokerLoginError(BrokerUnavailableError):
    """The broker answered but refused the configured credentials."""


class DatabaseUnavailableError(StreamsError):
    """The configured database could not be reached."""


class EntityNotFoundError(StreamsError):
    """An event names a user or post that does not exist (yet)."""
