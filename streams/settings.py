"""One typed, frozen settings object, read once at start from a file and the environment.

The file is ``config/streams.tusk`` (or the one ``STREAMS_CONFIG`` names): nested ``key: value``
lines, a YAML subset, read with PyYAML. Every setting also has an ``STREAMS_`` environment name
(nested with ``__``, e.g. ``STREAMS_KAFKA__BROKERS``), and many answer to the names deployments
of message queues already use (``KAFKA_BROKERS``, ``RETRY_MAX_ATTEMPTS``). Environment beats the
file; ``STREAMS_`` names beat the conventional ones. A bad value fails at start with its key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from streams import topics
from streams.cpu_affinity import parse_cpu_list
from streams.db.engine import with_driver
from streams.errors import ConfigurationError
from streams.topics import Family, Priority

DEFAULT_FILE = Path("config/streams.tusk")

#: Settings whose values never appear in messages.
SECRET_KEYS = frozenset({"password", "token"})

#: Conventional environment names, mapped onto the nested setting they set.
CONVENTIONAL_ENV: dict[str, tuple[str, ...]] = {
    "KAFKA_BROKERS": ("kafka", "brokers"),
    "KAFKA_CLIENT_ID": ("kafka", "client_id"),
    "KAFKA_GROUP_ID": ("kafka", "group_id"),
    "KAFKA_AUTO_OFFSET_RESET": ("kafka", "auto_offset_reset"),
    "KAFKA_SECURITY_PROTOCOL": ("kafka", "security", "protocol"),
    "KAFKA_SASL_MECHANISM": ("kafka", "security", "sasl_mechanism"),
    "KAFKA_SASL_USERNAME": ("kafka", "security", "username"),
    "KAFKA_SASL_PASSWORD": ("kafka", "security", "password"),
    "KAFKA_SSL_CA_LOCATION": ("kafka", "security", "ssl_cafile"),
    "SCHEMA_REGISTRY_URL": ("schema_registry", "url"),
    "DATABASE_URL": ("database", "url"),
    "SMTP_HOST": ("smtp", "host"),
    "SMTP_PORT": ("smtp", "port"),
    "RETRY_MAX_ATTEMPTS": ("retry", "max_attempts"),
    "RETRY_BACKOFF_MULTIPLIER": ("retry", "multiplier"),
    "RETRY_INITIAL_DELAY": ("retry", "initial_delay"),
    "MESSAGE_QUEUE_MONITORING_ENABLED": ("monitoring", "enabled"),
    "MESSAGE_QUEUE_METRICS_PORT": ("monitoring", "metrics_port"),
    "LOG_LEVEL": ("monitoring", "log_level"),
}


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSecurity(Section):
    """How clients authenticate to the brokers; passed to Faust, aiokafka and confluent-kafka alike."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    ssl_cafile: Path | None = Field(None, description="CA bundle that signed the brokers' certificates.")
    ssl_certfile: Path | None = Field(None, description="Client certificate, for brokers that require one.")
    ssl_keyfile: Path | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    @model_validator(mode="after")
    def sasl_needs_a_user(self) -> KafkaSecurity:
        if self.sasl and not (self.username and self.password):
            raise ValueError(f"protocol {self.protocol} needs username and password")
        return self


class KafkaSettings(Section):
    brokers: str = "127.0.0.1:9092"
    client_id: str = "streams"
    group_id: str = Field("streams", description="Consumer group, and the Faust app id.")
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "exactly_once"
    commit_interval: float = Field(
        2.8, gt=0, le=60,
        description="Seconds between the worker's commits. Under exactly-once what the agents send becomes "
        "visible at a commit; retries ask for one sooner.",
    )
    max_poll_records: int = Field(
        500, ge=1, le=800,
        description="Records one fetch hands to the agents. Kept below the room left in an agent's buffer once "
        "it stops fetching, so a backlog in one topic never holds up the delivery of another.",
    )
    fetch_max_wait: float = Field(
        0.1, gt=0, le=1.5,
        description="Seconds a fetch of the worker's consumer waits for data; a partition emptied meanwhile is "
        "fetched again only after it.",
    )
    session_timeout: float = Field(
        10.0, ge=6, le=300,
        description="Seconds a worker may go silent before its groups give its partitions to the others: how soon a "
        "dead worker's partitions move, and after which a stalled one's commits are refused.",
    )
    metadata_refresh: float = Field(
        30.0, gt=0, le=300,
        description="Seconds between the worker consumer's metadata refreshes. The group's leader rebalances when "
        "one shows a subscribed topic with partitions it did not assign.",
    )
    security: KafkaSecurity = KafkaSecurity()

    @field_validator("brokers", mode="before")
    @classmethod
    def brokers_may_be_a_list(cls, value: Any) -> Any:
        return ",".join(str(broker) for broker in value) if isinstance(value, list) else value

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
    priorities: dict[Family, Priority] = Field(
        default_factory=lambda: dict(topics.DEFAULT_PRIORITIES), description="Priority of each family's topic."
    )
    in_flight: dict[Family, Annotated[int, Field(ge=1, le=256)]] = Field(
        default_factory=lambda: dict(topics.DEFAULT_IN_FLIGHT),
        description="Events of each family one worker handles at once; events of one key stay in order.",
    )

    @field_validator("priorities")
    @classmethod
    def every_family_has_one(cls, value: dict[Family, Priority]) -> dict[Family, Priority]:
        return {**topics.DEFAULT_PRIORITIES, **value}

    @field_validator("in_flight")
    @classmethod
    def every_family_has_a_limit(cls, value: dict[Family, int]) -> dict[Family, int]:
        return {**topics.DEFAULT_IN_FLIGHT, **value}

    def weight(self, family: Family) -> int:
        return topics.PRIORITY_WEIGHTS[self.priorities[family]]

    def for_family(self, family: Family) -> str:
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
    retried_share: float = Field(
        0.05, gt=0, le=1,
        description="Share of a family's worker time its retried attempts get while fresh events of the family "
        "wait; 1 treats them alike.",
    )
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
    data_dir: Path = Path(".streams/worker")
    batch_size: int = Field(
        1000, ge=1, description="Events folded into one table write per key; the most the state engine reads at once.",
    )
    batch_window: float = Field(
        0.2, gt=0, description="Seconds to wait for a batch to fill; how often the state engine commits a transaction.",
    )
    standby_replicas: int = Field(
        1, ge=0, description="Other workers that keep a warm copy of each state partition, tailing its changelog.",
    )
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
    messages_per_connection: int = Field(
        100, ge=1, description="Messages sent over one connection before it is closed and another opened; "
        "below the server's own limit (Exchange: 20), 1 for a connection per message.",
    )


class ExportSettings(Section):
    directory: Path = Field(Path(".streams/exports"), description="Where export files are written.")


class WebSettings(Section):
    host: str = Field("127.0.0.1", description="Bind address; 127.0.0.1 keeps the view on this machine.")
    port: int = Field(6066, ge=1, le=65535)
    advertised_host: str | None = Field(
        None, description="The address other workers reach this one at, for routed requests; unset: host."
    )
    token: SecretStr | None = Field(None, description="When set, requests must carry it (all but /health).")


class MonitoringSettings(Section):
    enabled: bool = Field(True, description="Serve Prometheus metrics.")
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve them on this port of their own; unset: at /metrics of the web view."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_logs: bool = Field(False, description="One JSON object per log line, for log shippers.")


def cron_schedule(value: str) -> str:
    """A crontab line of five fields, as Faust's crontab timers read it."""
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError("must be a crontab schedule of five fields, such as '0 3 * * *'")
    return value


Schedule = Annotated[str, AfterValidator(cron_schedule)]


class MaintenanceSettings(Section):
    """When the periodic jobs run, in UTC, on the leader worker."""

    data_cleanup: Schedule = Field("0 3 * * *", description="Exports after 7 days, notifications after 30.")
    email_log_cleanup: Schedule = Field("30 3 * * *", description="Email-log entries after 30 days, failed ones after 7.")
    email_statistics: Schedule = Field("5 0 * * *", description="Yesterday's sent, failed and delivery rate.")


class WorkerSettings(Section):
    cpus: frozenset[int] | None = Field(
        None, description="CPUs the worker runs on, written as taskset writes them (3, 0-2,5); unset: any. "
        "One CPU of its own is fastest (see *The worker*).",
    )
    stop_timeout: float = Field(
        30.0, gt=0, description="Seconds a worker told to stop waits for what is pending before it abandons it and "
        "exits; what it abandons is read again by the next owner.",
    )

    @field_validator("cpus", mode="before")
    @classmethod
    def read_cpu_list(cls, value: object) -> object:
        """Text or a single number as taskset writes it; a set given in code passes as it is."""
        return parse_cpu_list(str(value)) if isinstance(value, (str, int)) else value


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
    monitoring: MonitoringSettings = MonitoringSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    worker: WorkerSettings = WorkerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, ConventionalEnvSource(settings_cls), file_source(settings_cls)


def settings_file() -> Path | None:
    """The file named by STREAMS_CONFIG (which must exist), else config/streams.tusk if there is one."""
    named = os.environ.get("STREAMS_CONFIG")
    if named:
        if not Path(named).is_file():
            raise ConfigurationError(f"STREAMS_CONFIG={named!r}: no such file")
        return Path(named)
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def file_source(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    path = settings_file()
    try:
        return YamlConfigSettingsSource(settings_cls, yaml_file=path)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not a settings file: {exc}") from None


class ConventionalEnvSource(PydanticBaseSettingsSource):
    """Reads the conventional names in CONVENTIONAL_ENV; STREAMS_ names win over them."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for env_name, (*sections, key) in CONVENTIONAL_ENV.items():
            if env_name in os.environ:
                nested = values
                for section in sections:
                    nested = nested.setdefault(section, {})
                nested[key] = os.environ[env_name]
        return values


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; a bad value raises ConfigurationError naming the key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(f"bad setting: {'; '.join(describe(error) for error in exc.errors())}") from None


def describe(error: Any) -> str:
    """``key=value: problem``, with secrets and whole sections left out of the message."""
    key = ".".join(str(part) for part in error["loc"])
    value = error.get("input")
    if error["loc"] and error["loc"][-1] in SECRET_KEYS:
        return f"{key}='***': {error['msg']}"
    if isinstance(value, dict):
        return f"{key}: {error['msg']}"
    return f"{key}={value!r}: {error['msg']}"


def setting_paths(model: type[BaseModel] = Settings, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The dotted path of every leaf setting, nested sections followed."""
    paths = []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            paths.extend(setting_paths(info.annotation, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def environment_names() -> set[str]:
    """Every environment variable the settings read, for deployment files and their checks."""
    return {"STREAMS_CONFIG", *CONVENTIONAL_ENV, *("STREAMS_" + "__".join(path).upper() for path in setting_paths())}
