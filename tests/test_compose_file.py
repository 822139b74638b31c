"""docker-compose.kafka.yml cannot run here, so it is checked against the settings the code reads."""

import yaml

from streams.settings import Settings, environment_names
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.kafka.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULTS = Settings.model_construct()


def test_it_runs_a_kraft_broker_a_schema_registry_and_the_worker() -> None:
    assert {"kafka", "schema-registry", "worker"} <= set(SERVICES)
    kafka_env = SERVICES["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in " ".join(kafka_env)


def test_worker_sets_only_variables_the_settings_read() -> None:
    assert set(SERVICES["worker"]["environment"]) <= environment_names()


def test_worker_reaches_the_broker_and_registry_on_the_addresses_they_advertise() -> None:
    worker_env = SERVICES["worker"]["environment"]
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{worker_env['KAFKA_BROKERS']}" in advertised
    registry_port = SERVICES["schema-registry"]["environment"]["SCHEMA_REGISTRY_LISTENERS"].rsplit(":", 1)[1]
    assert worker_env["SCHEMA_REGISTRY_URL"] == f"http://schema-registry:{registry_port}"


def test_published_ports_match_the_default_settings() -> None:
    assert f"{DEFAULTS.web.port}:{DEFAULTS.web.port}" in SERVICES["worker"]["ports"]
    assert int(SERVICES["worker"]["environment"]["STREAMS_WEB__PORT"]) == DEFAULTS.web.port
    broker_port = DEFAULTS.kafka.brokers.rsplit(":", 1)[1]
    assert f"{broker_port}:{broker_port}" in SERVICES["kafka"]["ports"]
    assert f"PLAINTEXT://127.0.0.1:{broker_port}" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_worker_state_lives_on_a_volume_at_the_configured_data_dir() -> None:
    data_dir = SERVICES["worker"]["environment"]["STREAMS_STATE__DATA_DIR"]
    assert any(volume.endswith(f":{data_dir}") for volume in SERVICES["worker"]["volumes"])
