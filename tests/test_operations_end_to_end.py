"""Operations against the real broker: the web view's token, Prometheus metrics, JSON logs, and the topics, produce, lag and health commands."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streams.cli import main
from streams.producer import EventProducer
from streams.retry import DUE_AT, ORIGIN_TOPIC, read_headers
from streams.topics import changelog_topic_name, tier_topic_name, tier_topic_names
from tests.conftest import free_port
from tests.kafka_reading import read_all
from tests.prometheus_reading import samples

pytestmark = pytest.mark.kafka

TOKEN = "view-T0ken-secret"


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_token_guards_the_view_and_metrics_and_logs_tell_what_happened(namespace, start_worker, smtp_server) -> None:
    settings = namespace.settings()
    metrics_port = free_port()
    with EventProducer(settings) as producer:
        for n in range(30):
            producer.publish_user_created({"id": f"op{n}", "email": f"op{n}@example.com", "username": f"op{n}"})
        ghost = producer.publish_email_notification("nobody-here", "newsletter", {"title": "t", "body": "b"})
    worker = start_worker(
        STREAMS_WEB__TOKEN=TOKEN, MESSAGE_QUEUE_METRICS_PORT=str(metrics_port), STREAMS_MONITORING__JSON_LOGS="true",
        RETRY_MAX_ATTEMPTS="1", STREAMS_RETRY__MISSING_ENTITY_ATTEMPTS="1", SMTP_PORT=str(smtp_server.port),
    )
    deadline = time.monotonic() + 90
    while worker.get("/signups")["total"] < 30 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert worker.get("/signups")["total"] == 30

    assert status_of(worker.url + "/signups") == 401
    assert status_of(worker.url + "/signups", {"Authorization": "Bearer wrong"}) == 401
    assert status_of(worker.url + f"/signups?token={TOKEN}") == 200
    assert status_of(worker.url + "/posts/p1/engagement", {"Authorization": f"Bearer {TOKEN}"}) in (200, 404)
    assert status_of(worker.url + "/health") in (200, 503), "health stays open to probes"

    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    users_topic = settings.topics.user_events
    deadline = time.monotonic() + 60
    seen = samples(metrics_url)
    dead_lettered = ("streams_events_dead_lettered_total", frozenset({
        ("topic", settings.topics.email_events), ("agent", "emails"), ("error_type", "EntityNotFoundError")}))
    users_processed = ("streams_events_processed_total", frozenset({("topic", users_topic), ("agent", "users")}))
    while (seen.get(dead_lettered, 0) < 1 or seen.get(users_processed, 0) < 30) and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = samples(metrics_url)
    assert seen[users_processed] == 30
    assert seen[("streams_events_processed_total", frozenset({("topic", users_topic), ("agent", "signups")}))] == 30
    assert seen[("streams_batch_processing_seconds_count", frozenset({("topic", users_topic), ("agent", "signups")}))] >= 1
    assert seen[("streams_event_processing_seconds_count", frozenset({("topic", users_topic), ("agent", "users")}))] >= 30
    assert seen[("streams_events_failed_total", frozenset({
        ("topic", settings.topics.email_events), ("agent", "emails"), ("error_type", "EntityNotFoundError")}))] == 1
    assert seen[("streams_consumer_lag", frozenset({("topic", users_topic)}))] >= 0
    assert seen[("streams_relay_lateness_seconds_count", frozenset())] == 0, "one attempt each: nothing relayed"
    tiers = {labels: value for (name, labels), value in seen.items() if name == "streams_relay_pending"}
    assert tiers == {frozenset({("tier", tier)}): 0 for tier in tier_topic_names(settings.topics, settings.retry)}
    assert seen[("streams_table_keys", frozenset({("table", "signup-partials")}))] >= 1

    worker.stop()
    lines = [json.loads(line) for line in worker.log_file.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    about_ghost = [line for line in lines if line.get("event_id") == str(ghost.id)]
    assert about_ghost and about_ghost[-1]["topic"] == settings.topics.email_events
    assert about_ghost[-1]["level"] == "ERROR" and "dead-lettered" in about_ghost[-1]["message"]
    assert TOKEN not in worker.log_file.read_text()


@pytest.fixture
def cli_env(namespace, monkeypatch):
    """The ``streams`` command pointed at this test's broker, topics and group, as an operator would set it."""
    for name, value in namespace.env.items():
        monkeypatch.setenv(name, value)
    return namespace


def test_topics_create_makes_every_topic_with_compacted_changelogs(cli_env, capsys) -> None:
    assert main(["topics", "create", "--partitions", "3"]) == 0
    out = capsys.readouterr().out
    settings = cli_env.settings()
    admin = AdminClient({"bootstrap.servers": cli_env.bootstrap})
    changelog = changelog_topic_name(settings.kafka.group_id, "post-engagement")
    metadata = admin.list_topics(timeout=10).topics
    for topic in (settings.topics.user_events, settings.topics.dead_letters, changelog, f"{settings.topics.retry_prefix}-1000ms"):
        assert topic in out and len(metadata[topic].partitions) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, changelog)
    config = admin.describe_configs([resource])[resource].result()
    assert config["cleanup.policy"].value == "compact"
    assert main(["topics", "create"]) == 0
    assert "created" not in capsys.readouterr().out, "a second run finds every topic there"


def test_produce_sends_a_file_of_events_and_lag_counts_them(cli_env, tmp_path, capsys) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"type": "UserCreated", "user_id": "f1", "email": "f1@example.com", "username": "f1"}\n'
        '\n'
        '{"type": "streams.users.UserCreated", "user_id": "f2", "email": "f2@example.com", "username": "f2"}\n'
        '{"type": "PostViewed", "post_id": "p1", "user_id": "f1"}\n'
    )
    assert main(["produce", "--file", str(events), "--quiet"]) == 0
    assert "sent 3 events" in capsys.readouterr().out
    settings = cli_env.settings()
    assert len(read_all(cli_env.bootstrap, settings.topics.user_events, 2)) == 2
    assert len(read_all(cli_env.bootstrap, settings.topics.post_events, 1)) == 1

    assert main(["lag"]) == 0
    rows = dict(line.rsplit(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows[settings.topics.user_events].strip() == "2" and rows[settings.topics.post_events].strip() == "1"
    assert rows["total"] == "3"


def test_produce_with_a_delay_waits_in_a_tier_and_lag_counts_it_for_the_relays(cli_env, tmp_path, capsys) -> None:
    assert main(["topics", "create"]) == 0
    events = tmp_path / "later.jsonl"
    events.write_text(
        '{"type": "UserCreated", "user_id": "d1", "email": "d1@example.com", "username": "d1"}\n'
        '{"type": "PostViewed", "post_id": "p1", "user_id": "d1"}\n'
    )
    capsys.readouterr()
    asked = time.time()
    assert main(["produce", "--file", str(events), "--delay", "600", "--quiet"]) == 0
    assert "sent 2 events" in capsys.readouterr().out
    settings = cli_env.settings()
    tier = tier_topic_name(settings.topics.retry_prefix, 256.0)
    held = read_all(cli_env.bootstrap, tier, 2)
    assert len(held) == 2
    for message in held:
        headers = read_headers(message.headers())
        assert int(headers[DUE_AT]) / 1000 >= asked + 600
    assert {read_headers(message.headers())[ORIGIN_TOPIC] for message in held} == {
        settings.topics.user_events, settings.topics.post_events}

    assert main(["lag", "--relays"]) == 0
    rows = dict(line.rsplit(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows[tier].strip() == "2" and rows["total"] == "2"
    assert set(rows) == {*tier_topic_names(settings.topics, settings.retry), "total"}


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"type": "UserCreated", "user_id": "x"', "events.jsonl:2: not JSON"),
        ('{"type": "UserExploded", "user_id": "x"}', "events.jsonl:2: unknown event type 'UserExploded'"),
        ('{"type": "UserCreated", "user_id": "x"}', "events.jsonl:2: UserCreated:"),
        ('{"type": "UserCreated", "user_id": "x", "email": 5, "username": "x"}', "not sent, an event is invalid"),
    ],
)
def test_produce_stops_at_a_bad_line_before_sending_anything(cli_env, tmp_path, capsys, line: str, message: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "UserCreated", "user_id": "ok", "email": "ok@example.com", "username": "ok"}\n' + line + "\n")
    assert main(["produce", "--file", str(events), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    topics = AdminClient({"bootstrap.servers": cli_env.bootstrap}).list_topics(timeout=10).topics
    assert cli_env.settings().topics.user_events not in topics, "nothing was sent, so the topic was never created"


def test_health_reports_a_worker_and_fails_clearly_without_one(cli_env, start_worker, smtp_server, capsys) -> None:
    worker = start_worker(SMTP_PORT=str(smtp_server.port))
    deadline = time.monotonic() + 60
    answers = []
    while True:
        code = main(["health", "--url", worker.url])
        out = capsys.readouterr().out
        answers.append((code, out))
        # The state engine joins a consumer group of its own, after the worker's agents have theirs.
        if code == 0 and "partitions [0, 1, 2, 3]" in out or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all("partitions [0, 1, 2, 3]" in out for code, out in answers if code == 0), "healthy before the state engine joined"
    assert code == 0 and "status: healthy" in out and "state post-engagement" in out
    assert "state signup-partials" in out and "partitions [0, 1, 2, 3]" in out
    assert main(["health", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2"]) == 1
    assert "no worker answered" in capsys.readouterr().err
