"""Settings: read once, typed, and loud about bad values."""

from pathlib import Path

import pytest
import yaml

from streams.errors import ConfigurationError
from streams.settings import Settings, environment_names, load_settings, setting_paths


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
    assert settings.kafka.session_timeout == 10.0


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
        ("STREAMS_KAFKA__SESSION_TIMEOUT", "3", "kafka.session_timeout"),
        ("STREAMS_TOPICS__PARTITIONS", "0", "topics.partitions"),
        ("RETRY_MAX_ATTEMPTS", "0", "retry.max_attempts"),
        ("RETRY_BACKOFF_MULTIPLIER", "0.5", "retry.multiplier"),
        ("STREAMS_KAFKA__FETCH_MAX_WAIT", "2", "kafka.fetch_max_wait"),
        ("STREAMS_WORKER__CPUS", "2-1", "worker.cpus"),
        ("STREAMS_WORKER__CPUS", "first", "worker.cpus"),
        ("STREAMS_WORKER__CPUS", "0,", "worker.cpus"),
    ],
)
def test_a_bad_value_fails_naming_the_key_and_the_value(monkeypatch, name: str, value: str, key: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert f"{key}={value!r}" in str(error.value)


def test_worker_cpus_are_read_as_taskset_writes_them(monkeypatch) -> None:
    clear_environment(monkeypatch)
    assert load_settings().worker.cpus is None
    monkeypatch.setenv("STREAMS_WORKER__CPUS", "0-2,5")
    assert load_settings().worker.cpus == {0, 1, 2, 5}


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


SAMPLE = Path(__file__).parent.parent / "config" / "streams.tusk"


def clear_environment(monkeypatch) -> None:
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)


def test_the_sample_file_names_every_setting_with_its_default(monkeypatch) -> None:
    clear_environment(monkeypatch)
    sample = yaml.safe_load(SAMPLE.read_text())
    for path in setting_paths():
        section = sample
        for part in path:
            assert part in section, f"config/streams.tusk lacks {'.'.join(path)}"
            section = section[part]
    monkeypatch.setenv("STREAMS_CONFIG", str(SAMPLE))
    assert load_settings() == Settings.model_construct()


def test_the_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [".".join(path) for path in setting_paths() if f"`{'.'.join(path)}`" not in readme]
    assert missing == []


def test_a_settings_file_is_read_and_the_environment_wins_over_it(monkeypatch, tmp_path) -> None:
    clear_environment(monkeypatch)
    config = tmp_path / "streams.tusk"
    config.write_text(
        "# production\n"
        "kafka:\n  brokers: [\"kafka-1:9092\", \"kafka-2:9092\"]\n  group_id: \"from-file\"\n"
        "  security:\n    protocol: SASL_SSL\n    username: svc\n    password: \"from-file-secret\"\n"
        "retry:\n  max_attempts: 5\n  delay_tiers: [1, 10]\n"
        "monitoring:\n  json_logs: true\n"
    )
    monkeypatch.setenv("STREAMS_CONFIG", str(config))
    monkeypatch.setenv("KAFKA_GROUP_ID", "from-env")
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "7")
    settings = load_settings()
    assert settings.kafka.brokers == "kafka-1:9092,kafka-2:9092"
    assert settings.kafka.group_id == "from-env"
    assert settings.kafka.security.protocol == "SASL_SSL"
    assert settings.kafka.security.password.get_secret_value() == "from-file-secret"
    assert settings.retry.max_attempts == 7 and settings.retry.delay_tiers == (1.0, 10.0)
    assert settings.monitoring.json_logs is True


@pytest.mark.parametrize(
    "text, message",
    [
        ("web:\n  port: 99999\n", "web.port=99999"),
        ("kafka:\n  brokerz: x\n", "kafka.brokerz="),
        ("smtp:\n  password: [1, 2\n", "streams.tusk: not a settings file"),
        ("kafka:\n  security:\n    protocol: SASL_SSL\n    password: hunter2\n", "needs username and password"),
    ],
)
def test_a_bad_file_fails_naming_the_key_or_the_file(monkeypatch, tmp_path, text: str, message: str) -> None:
    clear_environment(monkeypatch)
    config = tmp_path / "streams.tusk"
    config.write_text(text)
    monkeypatch.setenv("STREAMS_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert message in str(error.value)
    assert "hunter2" not in str(error.value)


def test_a_missing_named_file_is_an_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("STREAMS_CONFIG", str(tmp_path / "nope.tusk"))
    with pytest.raises(ConfigurationError, match="no such file"):
        load_settings()


def test_secrets_never_appear_in_errors(monkeypatch) -> None:
    clear_environment(monkeypatch)
    monkeypatch.setenv("STREAMS_SMTP__PASSWORD", "hunter2")
    monkeypatch.setenv("STREAMS_SMTP__PORT", "0")
    monkeypatch.setenv("STREAMS_WEB__TOKEN", "tok-hunter2")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert "hunter2" not in str(error.value) and "smtp.port=" in str(error.value)
