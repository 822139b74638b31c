"""Prometheus metrics of the worker, served at /metrics by its web view."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from faust.types import EventT
from prometheus_client import Counter, Gauge, Histogram

EVENTS_PROCESSED = Counter("streams_events_processed", "Events an agent handled without error.", ["topic", "agent"])
EVENTS_FAILED = Counter("streams_events_failed", "Events whose handler raised.", ["topic", "agent", "error_type"])
PROCESSING_SECONDS = Histogram(
    "streams_event_processing_seconds", "Time an agent's handler took for one event, failures included.",
    ["topic", "agent"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

EVENTS_RETRIED = Counter(
    "streams_events_retried", "Events sent to a delay tier after a failure.", ["topic", "agent", "error_type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "streams_events_dead_lettered", "Events sent to the dead-letter topic.", ["topic", "agent", "error_type"]
)
DEAD_LETTERS_STORED = Counter(
    "streams_dead_letters_stored", "Dead letters stored in the dead_letters table.", ["origin_topic", "error_type"]
)
STATE_ENGINE_RESTARTS = Counter(
    "streams_state_engine_restarts", "Times the state engine started over from what was committed, after a refused "
    "transaction (this worker had lost its partitions) or a broker error.",
)
EVENTS_RELAYED = Counter(
    "streams_events_relayed", "Delayed or retried events the relay sent on when due.", ["destination"]
)
RETRY_LATENESS_SECONDS = Histogram(
    "streams_retry_lateness_seconds",
    "How long after its due time a retried attempt began: the relay, the fetch and the wait for its priority turn.",
    ["agent"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RELAY_LATENESS_SECONDS = Histogram(
    "streams_relay_lateness_seconds", "How long after its due time the relay sent an event back to its topic.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BATCH_SECONDS = Histogram(
    "streams_batch_processing_seconds", "Time a table agent took to fold one batch into its table.",
    ["topic", "agent"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

PERIODIC_JOB_RUNS = Counter(
    "streams_periodic_job_runs", "Runs of a periodic job, by outcome (succeeded, failed).", ["job", "outcome"]
)
PERIODIC_JOB_LAST_SUCCESS = Gauge(
    "streams_periodic_job_last_success_timestamp_seconds", "When a periodic job last succeeded, epoch seconds.", ["job"]
)


@contextmanager
def batch_handled(batch: Sequence[EventT], agent: str) -> Iterator[None]:
    """Count a table agent's batch as processed events, and time it."""
    with batch_folded(batch[-1].message.topic, agent, len(batch)):
        yield


@contextmanager
def batch_folded(topic: str, agent: str, events: int) -> Iterator[None]:
    """Count a batch of ``events`` folded into stream state as processed events, and time it."""
    started = time.perf_counter()
    yield
    BATCH_SECONDS.labels(topic, agent).observe(time.perf_counter() - started)
    EVENTS_PROCESSED.labels(topic, agent).inc(events)
