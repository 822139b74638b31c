"""Shared fixtures: one real broker per run, and per-test topic names, group ids and workers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.devkafka import LocalBroker, LocalSchemaRegistry
from streams.settings import Settings, load_settings
from streams.worker_process import WorkerProcess
from tests.databases import PostgresServer
from tests.smtp_inbox import SmtpServer

ROOT = Path(__file__).resolve().parent.parent
JARS_CACHE = ROOT / ".streams" / "kafka-jars"
REGISTRY_CACHE = ROOT / ".streams" / "registry-app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """A local KRaft broker started for this run, or None when KAFKA_BOOTSTRAP names another."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        yield None
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: LocalBroker | None) -> str:
    """The real broker every Kafka test talks to."""
    return local_broker.bootstrap if local_broker else os.environ["KAFKA_BOOTSTRAP"]


@pytest.fixture(scope="session")
def schema_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Confluent-compatible Schema Registry (Apicurio), started once for the tests that need one."""
    registry = LocalSchemaRegistry(tmp_path_factory.mktemp("registry"), port=free_port(), cache=REGISTRY_CACHE)
    try:
        yield registry.start()
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer(free_port()) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each supported kind: every test using it runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'streams.db'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, with an empty inbox for this test."""
    with SmtpServer(free_port()) as server:
        yield server


@dataclass(frozen=True)
class Namespace:
    """Names no other test shares: a prefix for topics and the consumer group / app id."""

    prefix: str
    bootstrap: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "STREAMS_KAFKA__BROKERS": self.bootstrap,
            "STREAMS_KAFKA__GROUP_ID": f"{self.prefix}-app",
            "STREAMS_TOPICS__USER_EVENTS": f"{self.prefix}-user-events",
            "STREAMS_TOPICS__POST_EVENTS": f"{self.prefix}-post-events",
            "STREAMS_TOPICS__EMAIL_EVENTS": f"{self.prefix}-email-events",
            "STREAMS_TOPICS__EXPORT_EVENTS": f"{self.prefix}-export-events",
            "STREAMS_TOPICS__RETRY_PREFIX": f"{self.prefix}-retry",
            "STREAMS_TOPICS__DEAD_LETTERS": f"{self.prefix}-dead-letters",
            "STREAMS_TOPICS__USER_STATS_CHANGES": f"{self.prefix}-user-stats-changes",
        }

    def settings(self) -> Settings:
        return load_settings(
            kafka={"brokers": self.bootstrap, "group_id": f"{self.prefix}-app"},
            topics={
                "user_events": f"{self.prefix}-user-events",
                "post_events": f"{self.prefix}-post-events",
                "email_events": f"{self.prefix}-email-events",
                "export_events": f"{self.prefix}-export-events",
                "retry_prefix": f"{self.prefix}-retry",
                "dead_letters": f"{self.prefix}-dead-letters",
                "user_stats_changes": f"{self.prefix}-user-stats-changes",
            },
        )


@pytest.fixture
def namespace(kafka_bootstrap: str) -> Namespace:
    return Namespace(f"t{uuid.uuid4().hex[:10]}", kafka_bootstrap)


@pytest.fixture
def start_worker(namespace: Namespace, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``faust -A streams.app worker`` processes in this test's namespace; all are stopped afterwards."""
    workers: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        name = f"worker{len(workers)}"
        worker_env = {**namespace.env, "STREAMS_STATE__DATA_DIR": str(tmp_path / name), **env}
        worker = WorkerProcess(worker_env, tmp_path / f"{name}.log", free_port())
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()
