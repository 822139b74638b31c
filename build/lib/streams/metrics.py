"""Prometheus metrics of the worker, served at /metrics by its web view."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_RETRIED = Counter(
    "streams_events_retried", "Events sent to a delay tier after a failure.", ["topic", "agent", "error_type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "streams_events_dead_lettered", "Events sent to the dead-letter topic.", ["topic", "agent", "error_type"]
)
DEAD_LETTERS_STORED = Counter(
    "streams_dead_letters_stored", "Dead letters stored in the dead_letters table.", ["origin_topic", "error_type"]
)
EVENTS_RELAYED = Counter(
    "streams_events_relayed", "Delayed or retried events the relay sent on when due.", ["destination"]
)
