"""Settings: read once, typed, and loud about bad values."""

import pytest

from streams.errors import ConfigurationError
from streams.settings import load_settings


def test_defaults_name_the_four_family_topics_and_the_local_broker(monkeypatch) -> None:
    for name in ("KAFKA_BROKERS", "STREAMS_KAFKA__BROKERS", "STREAMS_TOPICS__USER_EVENTS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.kafka.brokers == "127.0.0.1:9092"
    topics = settings.topics
    assert [topics.user_events, topics.post_events, topics.email_events, topics.export_events] == [
        "user-events", "post-events", "email-events", "export-events",
    ]
    assert settings.web.port == 6066
    assert settings.state.store == "rocksdb://"


def test_streams_names_override_and_win_over_conventional_ones(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", "kafka-a:9092,kafka-b:9092")
    monkeypatch.setenv("KAFKA_GROUP_ID", "from-conventional")
    monkeypatch.setenv("STREAMS_KAFKA__GROUP_ID", "from-streams")
    monkeypatch.setenv("STREAMS_TOPICS__USER_EVENTS", "tenant-a.user-events")
    settings = load_settings()
    assert settings.kafka.brokers == "kafka-a:9092,kafka-b:9092"
    assert settings.kafka.group_id == "from-streams"
    assert settings.topics.user_events == "tenant-a.user-events"


@pytest.mark.parametrize(
    "name, value, key",
    [
        ("STREAMS_WEB__PORT", "not-a-port", "web.port"),
        ("KAFKA_BROKERS", "localhost", "kafka.brokers"),
        ("KAFKA_AUTO_OFFSET_RESET", "sometimes", "kafka.auto_offset_reset"),
        ("STREAMS_STATE__STORE", "rocksdict://", "state.store"),
        ("STREAMS_TOPICS__PARTITIONS", "0", "topics.partitions"),
        ("RETRY_MAX_ATTEMPTS", "0", "retry.max_attempts"),
        ("RETRY_BACKOFF_MULTIPLIER", "0.5", "retry.multiplier"),
    ],
)
def test_a_bad_value_fails_naming_the_key_and_the_value(monkeypatch, name: str, value: str, key: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert f"{key}={value!r}" in str(error.value)


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception):
        settings.web.port = 1  # type: ignore[misc]


def test_family_priorities_default_to_posts_high_and_mail_low_and_are_configurable(monkeypatch) -> None:
    defaults = load_settings().topics
    assert defaults.priorities == {"user": "default", "post": "high", "email": "low", "export": "low"}
    assert [defaults.weight(family) for family in ("user", "post", "email", "export")] == [1, 5, 1, 1]
    monkeypatch.setenv("STREAMS_TOPICS__PRIORITIES", '{"email": "critical"}')
    changed = load_settings().topics
    assert changed.priorities["email"] == "critical" and changed.weight("email") == 10
    assert changed.priorities["post"] == "high"


def test_an_unknown_priority_is_refused_naming_the_family(monkeypatch) -> None:
    monkeypatch.setenv("STREAMS_TOPICS__PRIORITIES", '{"post": "urgent"}')
    with pytest.raises(ConfigurationError, match="topics.priorities.post='urgent'"):
        load_settings()


def test_retry_policy_comes_from_the_conventional_names_and_tiers_are_sorted(monkeypatch) -> None:
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("RETRY_INITIAL_DELAY", "0.5")
    monkeypatch.setenv("RETRY_BACKOFF_MULTIPLIER", "3")
    monkeypatch.setenv("STREAMS_RETRY__DELAY_TIERS", "[10, 0.5, 2]")
    retry = load_settings().retry
    assert (retry.max_attempts, retry.initial_delay, retry.multiplier) == (5, 0.5, 3.0)
    assert retry.delay_tiers == (0.5, 2.0, 10.0)
    monkeypatch.setenv("STREAMS_RETRY__DELAY_TIERS", "[1, 1]")
    with pytest.raises(ConfigurationError, match="retry.delay_tiers=.*must be distinct"):
        load_settings()
