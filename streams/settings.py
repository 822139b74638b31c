"""One typed, frozen settings object, read once at start from the environment.

Every setting has an ``STREAMS_`` name (nested with ``__``, e.g. ``STREAMS_KAFKA__BROKERS``);
the Kafka ones also answer to the names upstream deployments already use (``KAFKA_BROKERS``).
A bad value fails at start with the key's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streams import topics
from streams.db.engine import with_driver
from streams.errors import ConfigurationError

#: Conventional environment names, mapped onto the nested setting they set.
CONVENTIONAL_ENV = {
    "KAFKA_BROKERS": ("kafka", "brokers"),
    "KAFKA_CLIENT_ID": ("kafka", "client_id"),
    "KAFKA_GROUP_ID": ("kafka", "group_id"),
    "KAFKA_AUTO_OFFSET_RESET": ("kafka", "auto_offset_reset"),
    "SCHEMA_REGISTRY_URL": ("schema_registry", "url"),
    "DATABASE_URL": ("database", "url"),
    "SMTP_HOST": ("smtp", "host"),
    "SMTP_PORT": ("smtp", "port"),
    "RETRY_MAX_ATTEMPTS": ("retry", "max_attempts"),
    "RETRY_BACKOFF_MULTIPLIER": ("retry", "multiplier"),
    "RETRY_INITIAL_DELAY": ("retry", "initial_delay"),
}


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(Section):
    brokers: str = "127.0.0.1:9092"
    client_id: str = "streams"
    group_id: str = Field("streams", description="Consumer group, and the Faust app id.")
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "exactly_once"

    @field_validator("brokers")
    @classmethod
    def brokers_are_host_port(cls, value: str) -> str:
        for broker in value.split(","):
            host, _, port = broker.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {broker.strip()!r}")
        return value


class SchemaRegistrySettings(Section):
    url: str | None = Field(None, description="Use the Confluent wire format and this registry.")


class TopicSettings(Section):
    user_events: str = topics.USER_EVENTS
    post_events: str = topics.POST_EVENTS
    email_events: str = topics.EMAIL_EVENTS
    export_events: str = topics.EXPORT_EVENTS
    retry_prefix: str = Field(topics.RETRY_PREFIX, description="Delay-tier topics are named <prefix>-<delay>ms.")
    dead_letters: str = topics.DEAD_LETTERS
    user_stats_changes: str = topics.USER_STATS_CHANGES
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)
    priorities: dict[Literal["user", "post", "email", "export"], Literal["critical", "high", "default", "low"]] = Field(
        default_factory=lambda: dict(topics.DEFAULT_PRIORITIES), description="Priority of each family's topic."
    )

    @field_validator("priorities")
    @classmethod
    def every_family_has_one(cls, value: dict[str, str]) -> dict[str, str]:
        return {**topics.DEFAULT_PRIORITIES, **value}

    def weight(self, family: str) -> int:
        return topics.PRIORITY_WEIGHTS[self.priorities[family]]

    def for_family(self, family: str) -> str:
        """The topic of an event family: user, post, email or export."""
        return getattr(self, f"{family}_events")


class RetrySettings(Section):
    """Backoff is initial_delay × multiplier^(attempt − 1), plus up to ``jitter`` of it at random."""

    initial_delay: float = Field(1.0, gt=0, description="Seconds before the first retry.")
    multiplier: float = Field(2.0, ge=1)
    max_attempts: int = Field(3, ge=1, description="Attempts in all, the first included, before the dead-letter topic.")
    jitter: float = Field(0.0, ge=0, le=1, description="Up to this fraction of each backoff is added at random.")
    max_delay: float = Field(3600.0, gt=0, description="No backoff is longer than this many seconds.")
    missing_entity_attempts: int = Field(3, ge=1, description="Attempts for an event whose user or post does not exist.")
    delay_tiers: tuple[float, ...] = Field(
        topics.DELAY_TIERS, min_length=1, description="Seconds each delay-tier topic holds an event."
    )

    @field_validator("delay_tiers")
    @classmethod
    def positive_and_distinct(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if min(value) < 0.001 or len(set(value)) != len(value):
            raise ValueError("delay tiers must be distinct and at least 0.001 s")
        return tuple(sorted(value))


class StateSettings(Section):
    store: str = Field("rocksdb://", pattern=r"^(rocksdb|memory)://")
    data_dir: Path = Path(".streams/worker")
    batch_size: int = Field(1000, ge=1, description="Events folded into one table write per key.")
    batch_window: float = Field(0.2, gt=0, description="Seconds to wait for a batch to fill.")
    standby_replicas: int = Field(1, ge=0, description="Other workers that keep a warm copy of each table partition.")
    healthy_lag: int = Field(1000, ge=0, description="A topic whose consumer lag is below this is healthy.")


class DatabaseSettings(Section):
    url: str = Field("sqlite:///.streams/streams.db", description="sqlite:///path or postgresql://user@host/db")
    migrate_on_start: bool = Field(True, description="Workers bring the schema to the newest migration at start.")

    @field_validator("url")
    @classmethod
    def known_backend(cls, value: str) -> str:
        with_driver(value, asynchronous=True)
        return value


class SmtpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "Streams <no-reply@streams.local>"
    username: str | None = None
    password: SecretStr | None = None
    start_tls: bool = False
    timeout: float = Field(10.0, gt=0)


class ExportSettings(Section):
    directory: Path = Field(Path(".streams/exports"), description="Where export files are written.")


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(6066, ge=1, le=65535)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREAMS_", env_nested_delimiter="__", frozen=True, extra="forbid")

    kafka: KafkaSettings = KafkaSettings()
    schema_registry: SchemaRegistrySettings = SchemaRegistrySettings()
    topics: TopicSettings = TopicSettings()
    retry: RetrySettings = RetrySettings()
    state: StateSettings = StateSettings()
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    exports: ExportSettings = ExportSettings()
    web: WebSettings = WebSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, ConventionalEnvSource(settings_cls)


class ConventionalEnvSource(PydanticBaseSettingsSource):
    """Reads the conventional names in CONVENTIONAL_ENV; STREAMS_ names win over them."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, dict[str, str]] = {}
        for env_name, (section, key) in CONVENTIONAL_ENV.items():
            if env_name in os.environ:
                values.setdefault(section, {})[key] = os.environ[env_name]
        return values


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; a bad value raises ConfigurationError naming the key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}={error.get('input')!r}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"bad setting: {problems}") from None


def environment_names() -> set[str]:
    """Every environment variable the settings read, for deployment files and their checks."""
    names = set(CONVENTIONAL_ENV)
    for section, info in Settings.model_fields.items():
        for key in info.annotation.model_fields:
            names.add(f"STREAMS_{section}__{key}".upper())
    return names
