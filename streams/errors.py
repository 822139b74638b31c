"""The service's exception tree: one root, so callers can catch everything we raise on purpose."""


class StreamsError(Exception):
    """Root of every error the service raises deliberately."""


class ConfigurationError(StreamsError):
    """A setting is missing or has a bad value; the message names the key."""


class BrokerUnavailableError(StreamsError):
    """No Kafka broker answered at the configured address."""


class DatabaseUnavailableError(StreamsError):
    """The configured database could not be reached."""


class EntityNotFoundError(StreamsError):
    """An event names a user or post that does not exist (yet)."""
