"""Operations through a real worker: the web view's token, Prometheus metrics on their own port, JSON logs with event ids."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.producer import EventProducer
from tests.conftest import free_port

pytestmark = pytest.mark.kafka

TOKEN = "view-T0ken-secret"


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def samples(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=20) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


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
    while seen.get(dead_lettered, 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = samples(metrics_url)
    assert seen[("streams_events_processed_total", frozenset({("topic", users_topic), ("agent", "users")}))] >= 30
    assert seen[("streams_event_processing_seconds_count", frozenset({("topic", users_topic), ("agent", "users")}))] >= 30
    assert seen[("streams_events_failed_total", frozenset({
        ("topic", settings.topics.email_events), ("agent", "emails"), ("error_type", "EntityNotFoundError")}))] == 1
    assert seen[("streams_consumer_lag", frozenset({("topic", users_topic)}))] >= 0
    assert seen[("streams_table_keys", frozenset({("table", "signup-partials")}))] >= 1

    worker.stop()
    lines = [json.loads(line) for line in worker.log_file.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    about_ghost = [line for line in lines if line.get("event_id") == str(ghost.id)]
    assert about_ghost and about_ghost[-1]["topic"] == settings.topics.email_events
    assert about_ghost[-1]["level"] == "ERROR" and "dead-lettered" in about_ghost[-1]["message"]
    assert TOKEN not in worker.log_file.read_text()
