"""SASL/SCRAM against a real broker with a SCRAM listener: the right password works end to end, a wrong one is refused clearly, and no password leaks."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator

import pytest

from streams.devkafka import LocalBroker
from streams.errors import BrokerLoginError
from streams.producer import EventProducer
from streams.settings import Settings, load_settings
from streams.worker_process import WorkerError, WorkerProcess
from streams.worker_startup import check_broker
from tests.conftest import JARS_CACHE, Namespace, free_port

pytestmark = pytest.mark.kafka

USER, PASSWORD, WRONG = "streams-svc", "s3cret-Pa55word", "not-the-Pa55word"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        tmp_path_factory.mktemp("scram-kafka"), port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE,
        scram_port=free_port(), scram_users={USER: PASSWORD},
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def login_env(password: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": USER, "KAFKA_SASL_PASSWORD": password,
    }


def settings_with(namespace: Namespace, password: str, mechanism: str = "SCRAM-SHA-512") -> Settings:
    base = namespace.settings()
    security = {"protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism, "username": USER, "password": password}
    return load_settings(kafka={**base.kafka.model_dump(exclude={"security"}), "security": security},
                         topics=base.topics.model_dump())


@pytest.fixture
def scram_namespace(scram_broker: LocalBroker) -> Namespace:
    return Namespace(f"s{time.monotonic_ns()}", scram_broker.scram_bootstrap)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_an_authenticated_client_reaches_the_broker(scram_namespace: Namespace, mechanism: str) -> None:
    check_broker(settings_with(scram_namespace, PASSWORD, mechanism).kafka)


def test_a_wrong_password_is_refused_with_a_clear_error_that_hides_it(scram_namespace: Namespace) -> None:
    settings = settings_with(scram_namespace, WRONG)
    with pytest.raises(BrokerLoginError) as refused:
        check_broker(settings.kafka)
    assert f"refused the login of user {USER!r}" in str(refused.value)
    assert WRONG not in str(refused.value)

    with pytest.raises(BrokerLoginError) as refused, EventProducer(settings) as producer:
        producer.publish_user_created({"id": "u1", "email": "u1@example.com", "username": "u1"})
    assert "invalid credentials" in str(refused.value) and WRONG not in str(refused.value)


def test_a_worker_logged_in_with_scram_counts_signups_and_never_shows_the_password(
    scram_namespace: Namespace, tmp_path,
) -> None:
    with EventProducer(settings_with(scram_namespace, PASSWORD)) as producer:
        for n in range(40):
            producer.publish_user_created({"id": f"s{n}", "email": f"s{n}@example.com", "username": f"s{n}"})
    env = {**scram_namespace.env, **login_env(PASSWORD), "STREAMS_STATE__DATA_DIR": str(tmp_path / "state")}
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start()
    try:
        deadline = time.monotonic() + 90
        while worker.get("/signups")["total"] < 40 and time.monotonic() < deadline:
            assert worker.alive(), f"worker died; see {worker.log_file}"
            time.sleep(0.5)
        assert worker.get("/signups")["total"] == 40
        try:
            health = worker.text("/health")
        except urllib.error.HTTPError as unhealthy:
            health = unhealthy.read().decode()
    finally:
        worker.stop()
    assert PASSWORD not in health
    assert PASSWORD not in worker.log_file.read_text(errors="replace")


def test_a_worker_with_a_wrong_password_stops_at_start_saying_why(scram_namespace: Namespace, tmp_path) -> None:
    env = {**scram_namespace.env, **login_env(WRONG), "STREAMS_STATE__DATA_DIR": str(tmp_path / "state")}
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    with pytest.raises(WorkerError):
        worker.start(timeout=60)
    worker.stop()
    log = worker.log_file.read_text(errors="replace")
    assert f"refused the login of user {USER!r}" in log
    assert WRONG not in log
