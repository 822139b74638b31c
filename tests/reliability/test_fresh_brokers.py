"""The first and last moments of a cluster: workers started on brokers just made, and stopped as theirs goes away.

Each round starts a broker of its own, with none of the service's topics and no consumer group,
and a worker with the settings the README starts it with.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from streams.devkafka import LocalBroker
from streams.events import DataExport, EmailNotification, PostCreated, UserCreated
from streams.kafka.lag import GroupReader
from streams.producer import EventProducer
from streams.settings import Settings, load_settings
from streams.topics import FAMILIES
from streams.worker_process import WorkerProcess
from tests.conftest import JARS_CACHE, ROOT, free_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(1500)]

#: Workers started with /health polled from launch.
WORKER_ROUNDS = 20
#: Fresh brokers on which a probe reads lag with groups whose coordinators are still loading.
PROBE_ROUNDS = 8
PROBE_SECONDS = 6
#: The stop bound the stop tests give their workers, and what they allow on top for the process to end.
STOP_TIMEOUT_S = 10
EXIT_SLACK_S = 3


@contextmanager
def fresh_broker(home: Path) -> Iterator[LocalBroker]:
    broker = LocalBroker(home, port=free_port(), controller_port=free_port(), jars_cache=JARS_CACHE)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def worker_on(broker: LocalBroker, home: Path, **env: str) -> WorkerProcess:
    """A worker of the default group and topics on ``broker``, its state, database and log under ``home``;
    SMTP points at a closed port, so emails are retried, which still consumes them."""
    return WorkerProcess(
        {
            "STREAMS_KAFKA__BROKERS": broker.bootstrap,
            "STREAMS_STATE__DATA_DIR": str(home / "state"),
            "STREAMS_DATABASE__URL": f"sqlite:///{home / 'streams.db'}",
            "STREAMS_SMTP__PORT": str(free_port()),
            **env,
        },
        home / "worker.log", free_port(),
    )


class HealthPoller(threading.Thread):
    """GETs /health every ``interval`` seconds from before the worker listens; keeps (HTTP status, body status)."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.url = url + "/health"
        self.interval = interval
        self.answers: list[tuple[int, str]] = []
        self.refused = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                with urllib.request.urlopen(self.url, timeout=15) as response:
                    self.answers.append((response.status, json.loads(response.read())["status"]))
            except urllib.error.HTTPError as error:
                self.answers.append((error.code, json.loads(error.read())["status"]))
            except (urllib.error.URLError, ConnectionError):
                self.refused += 1

    def stop(self) -> None:
        self.done.set()
        self.join()


def family_topics(settings: Settings) -> list[str]:
    return [settings.topics.for_family(family) for family in FAMILIES]


def one_event_per_family(settings: Settings) -> None:
    with EventProducer(settings) as producer:
        producer.publish(UserCreated.new(user_id="ann", email="ann@example.com", username="ann"))
        producer.publish(PostCreated.new(post_id="p1", author_id="ann", content="#first"))
        producer.publish(EmailNotification.new(user_id="ann", template="announcement", data={"title": "T", "body": "B"}))
        producer.publish(DataExport.new(user_id="ann", format="json"))


def consumed_everything(reader: GroupReader, group: str, topics: list[str]) -> bool:
    """The group committed an offset on every partition holding events of ``topics``, up to their end."""
    lag = reader.lag(group, topics)
    committed = reader.committed(group, reader.partitions(topics))
    return set(lag) == set(topics) and not any(lag.values()) and {topic for topic, _ in committed} == set(topics)


def test_group_lag_read_while_a_fresh_brokers_coordinators_load_never_crashes_the_reader(tmp_path: Path) -> None:
    for round_ in range(PROBE_ROUNDS):
        with fresh_broker(tmp_path / f"broker{round_}") as broker:
            probe = subprocess.run(
                [sys.executable, "-m", "tests.reliability.lag_probe", broker.bootstrap, str(PROBE_SECONDS)],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )
        assert probe.returncode == 0, f"round {round_}: the probe exited with {probe.returncode}: {probe.stderr[-2000:]}"
        assert json.loads(probe.stdout)["answered"] > 0, f"round {round_}: no lag was read"


def test_workers_polled_for_health_from_launch_on_fresh_brokers_never_crash_and_consume_every_family_topic(
    tmp_path: Path, report,
) -> None:
    settings = load_settings()
    topics = family_topics(settings)
    starting_answers = refused = 0
    for round_ in range(WORKER_ROUNDS):
        home = tmp_path / f"round{round_}"
        with fresh_broker(home / "broker") as broker:
            worker = worker_on(broker, home)
            poller = HealthPoller(worker.url)
            poller.start()
            try:
                worker.start()
                wait_until(lambda: poller.answers and poller.answers[-1][1] != "starting", f"round {round_}: ready",
                           timeout=90, alive=worker.alive)
                here = load_settings(kafka={"brokers": broker.bootstrap})
                one_event_per_family(here)
                reader = GroupReader(here.kafka)
                try:
                    wait_until(lambda: consumed_everything(reader, here.kafka.group_id, topics),
                               f"round {round_}: every family topic consumed; see {worker.log_file}",
                               timeout=90, alive=worker.alive)
                finally:
                    reader.close()
            finally:
                poller.stop()
            exit_code = worker.stop()
        assert exit_code == 0, f"round {round_}: the worker exited with {exit_code}; see {worker.log_file}"
        assert poller.answers, f"round {round_}: /health never answered"
        for status, state in poller.answers:
            assert (status, state) in {(503, "starting"), (200, "healthy"), (503, "unhealthy")}, (round_, status, state)
        starting_answers += sum(state == "starting" for _, state in poller.answers)
        refused += poller.refused
    report({"workers_started": WORKER_ROUNDS, "health_answers_while_starting": starting_answers,
            "health_requests_refused_before_listening": refused})


@pytest.mark.parametrize("order", ["broker_first", "both_at_once"])
def test_a_worker_told_to_stop_as_its_broker_goes_away_exits_with_0_within_its_stop_timeout(
    order: str, tmp_path: Path, report,
) -> None:
    with fresh_broker(tmp_path / "broker") as broker:
        worker = worker_on(broker, tmp_path, STREAMS_WORKER__STOP_TIMEOUT=str(STOP_TIMEOUT_S))
        worker.start()
        wait_until(lambda: ready(worker), "the worker ready", alive=worker.alive)
        with EventProducer(load_settings(kafka={"brokers": broker.bootstrap})) as producer:
            for n in range(200):
                producer.publish(UserCreated.new(user_id=f"u{n}", email=f"u{n}@example.com", username=f"u{n}"))
        wait_until(lambda: worker.get("/signups")["total"] > 0, "signups counted", alive=worker.alive)
        going = threading.Thread(target=broker.stop)
        going.start()
        if order == "broker_first":
            going.join()
        stopping = time.monotonic()
        exit_code = worker.stop(timeout=STOP_TIMEOUT_S + 60)
        stop_seconds = time.monotonic() - stopping
        going.join()
    report({"stop_timeout_s": STOP_TIMEOUT_S, "seconds_to_stop": round(stop_seconds), "exit_code": exit_code})
    assert exit_code == 0, f"exit code {exit_code}; see {worker.log_file}"
    assert stop_seconds <= STOP_TIMEOUT_S + EXIT_SLACK_S, f"stopped after {stop_seconds:.1f}s; see {worker.log_file}"


def ready(worker: WorkerProcess) -> bool:
    try:
        return worker.get("/health")["status"] != "starting"
    except urllib.error.HTTPError as error:
        return json.loads(error.read())["status"] not in ("starting", "stopping")
