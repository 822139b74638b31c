"""The deployment files cannot run here (no Docker engine, no systemd instance), so they are parsed
and checked against the settings the code reads and against each other."""

import json
import re
import shlex
import tomllib
from importlib.util import find_spec
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from sqlalchemy.engine import make_url

from streams.settings import Settings, environment_names, load_settings
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.kafka.yml").read_text())
SERVICES = COMPOSE["services"]
DEFAULTS = Settings.model_construct()
FAUST_APP = ["faust", "-A", "streams.app", "worker", "-l", "info"]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continued lines joined and comment lines dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip():
            word, _, arguments = line.strip().partition(" ")
            instructions.append((word.upper(), arguments.strip()))
    return instructions


def unit_directives(text: str) -> dict[str, dict[str, list[str]]]:
    """Section → key → every value given, in order; systemd allows a key more than once."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def assignments(words: list[str]) -> dict[str, str]:
    return dict(word.split("=", 1) for word in words)


def seconds(duration: str | int) -> float:
    """A duration as compose (``2m30s``) or systemd (``2min 30s``) writes it."""
    units = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(min|h|m|s|)", str(duration))
    assert parts, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


DOCKERFILE = dockerfile_instructions((ROOT / "Dockerfile").read_text())
UNIT = unit_directives((ROOT / "deploy" / "streams-worker@.service").read_text())
SERVICE = UNIT["Service"]


def instruction(name: str) -> list[str]:
    return [arguments for word, arguments in DOCKERFILE if word == name]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in instruction("ENV"):
        env.update(assignments(shlex.split(arguments)))
    return env


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, object]) -> Settings:
    """The settings a process would read from exactly ``env``; a SQLite URL would create its folder here."""
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return load_settings()


def test_it_runs_a_kraft_broker_a_schema_registry_postgres_and_the_worker() -> None:
    assert {"kafka", "schema-registry", "postgres", "worker"} <= set(SERVICES)
    kafka_env = SERVICES["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in " ".join(kafka_env)


def test_worker_sets_only_variables_the_settings_read() -> None:
    assert set(SERVICES["worker"]["environment"]) <= environment_names()


def test_worker_environment_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    worker_env = SERVICES["worker"]["environment"]
    settings = settings_from(monkeypatch, worker_env)
    assert settings.database.url == worker_env["DATABASE_URL"]
    assert settings.schema_registry.url == worker_env["SCHEMA_REGISTRY_URL"]
    assert settings.web.port == DEFAULTS.web.port


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
    assert instruction("VOLUME") == [data_dir]


def test_postgres_checks_its_own_health_and_keeps_its_data_on_a_named_volume() -> None:
    postgres = SERVICES["postgres"]
    assert postgres["image"].split(":")[0] == "postgres"
    assert postgres["image"].split(":")[1].split(".")[0] == "16"
    kind, command = postgres["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    program, *options = shlex.split(command.split(">")[0])
    assert program == "pg_isready"
    env = postgres["environment"]
    assert {f"--username={env['POSTGRES_USER']}", f"--dbname={env['POSTGRES_DB']}"} <= set(options)
    named = {volume.split(":")[0]: volume.split(":")[1] for volume in postgres["volumes"]}
    assert "/var/lib/postgresql/data" in named.values()
    assert set(named) <= set(COMPOSE["volumes"])


def test_worker_starts_once_the_database_and_the_broker_are_healthy() -> None:
    depends = SERVICES["worker"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["kafka"]["condition"] == "service_healthy"
    for name, condition in depends.items():
        if condition["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES[name], f"{name} has no healthcheck to wait for"


def test_worker_database_url_names_the_postgres_service_and_its_credentials() -> None:
    url = make_url(SERVICES["worker"]["environment"]["DATABASE_URL"])
    postgres_env = SERVICES["postgres"]["environment"]
    assert url.get_backend_name() == "postgresql"
    assert url.host == "postgres"
    assert url.port in (None, 5432)
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.password == postgres_env["POSTGRES_PASSWORD"]
    assert url.database == postgres_env["POSTGRES_DB"]


def test_worker_is_built_from_the_dockerfile_and_runs_its_command() -> None:
    worker = SERVICES["worker"]
    build = worker["build"] if isinstance(worker["build"], dict) else {"context": worker["build"]}
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == ROOT / "Dockerfile"
    assert "command" not in worker and "entrypoint" not in worker


def test_dockerfile_base_image_satisfies_the_python_the_package_requires() -> None:
    (base,) = instruction("FROM")
    image, tag = base.split()[0].split(":")
    assert image == "python" and tag.endswith("-slim")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert tag.removesuffix("-slim") in SpecifierSet(requires)


def test_dockerfile_exposes_the_default_web_port_and_checks_health_there() -> None:
    assert instruction("EXPOSE") == [str(DEFAULTS.web.port)]
    (healthcheck,) = instruction("HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    (url,) = re.findall(r"https?://[^'\"]+", command[2])
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", DEFAULTS.web.port, "/health")


def test_dockerfile_runs_the_faust_app_as_a_user_other_than_root() -> None:
    assert [json.loads(arguments) for arguments in instruction("CMD")] == [FAUST_APP]
    assert find_spec(FAUST_APP[2]) is not None
    users = instruction("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_environment_uses_names_the_settings_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {name: value for name, value in dockerfile_env().items() if not name.startswith(("PYTHON", "PIP_"))}
    assert set(env) <= environment_names()
    assert env["STREAMS_WEB__HOST"] == "0.0.0.0"
    (volume,) = instruction("VOLUME")
    sqlite_file = PurePosixPath(make_url(env.pop("DATABASE_URL")).database)
    assert sqlite_file.is_relative_to(volume)
    settings = settings_from(monkeypatch, env)
    assert str(settings.state.data_dir) == volume
    assert settings.exports.directory.is_relative_to(volume)


def test_systemd_unit_runs_the_same_app_as_the_image() -> None:
    (exec_start,) = SERVICE["ExecStart"]
    program, *arguments = shlex.split(exec_start)
    assert PurePosixPath(program).name == FAUST_APP[0]
    assert PurePosixPath(program).is_absolute()
    assert arguments == FAUST_APP[1:]


def test_systemd_unit_gives_each_instance_its_own_settings_and_data_dir() -> None:
    environment = assignments([word for line in SERVICE["Environment"] for word in shlex.split(line)])
    assert set(environment) - {"PYTHONUNBUFFERED"} <= environment_names()
    data_dir = environment["STREAMS_STATE__DATA_DIR"]
    assert "%i" in data_dir
    assert any("%i" in path for path in SERVICE["EnvironmentFile"])
    writable = [path for line in SERVICE["ReadWritePaths"] for path in line.split()]
    assert data_dir in writable
    assert environment["STREAMS_EXPORTS__DIRECTORY"] in writable


def test_systemd_unit_restarts_on_failure_unprivileged_and_confined() -> None:
    assert SERVICE["Restart"] == ["on-failure"]
    assert SERVICE["User"][0] not in ("root", "0")
    assert SERVICE["KillSignal"] == ["SIGTERM"]
    assert SERVICE["NoNewPrivileges"] == ["yes"]
    assert SERVICE["ProtectSystem"] == ["strict"]
    assert SERVICE["PrivateTmp"] == ["yes"]


def test_a_clean_stop_gets_more_time_than_the_worker_gives_itself() -> None:
    bound = load_settings().worker.stop_timeout
    for grace in (SERVICE["TimeoutStopSec"][0], SERVICES["worker"]["stop_grace_period"]):
        assert seconds(grace) > bound


def test_worker_env_example_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (ROOT / "deploy" / "worker.env.example").read_text().splitlines()
    env = assignments([line for line in lines if line.strip() and not line.startswith("#")])
    assert set(env) <= environment_names()
    settings = settings_from(monkeypatch, env)
    assert make_url(settings.database.url).get_backend_name() == "postgresql"
