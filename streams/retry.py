"""Retry policy, and the headers that carry an event through the delay tiers to a dead letter.

Kafka has no per-message delay, and a failed event must not hold up its partition. So a failed
event is copied, bytes unchanged, to a delay-tier topic with headers that say how often it was
tried, when it is due again, where it came from and why it failed. The relay
(``streams.relay``) sends it back to its origin when it is due, addressed to the agent that
failed on it: the other agents on that topic have already seen it. When its attempts are spent,
or its error is permanent, it goes to the dead-letter topic instead, with the traceback.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streams.errors import EntityNotFoundError, PermanentError
from streams.settings import RetrySettings

ATTEMPTS = "streams-attempts"
DUE_AT = "streams-due-at"
ORIGIN_TOPIC = "streams-origin-topic"
ORIGIN_PARTITION = "streams-origin-partition"
ORIGIN_OFFSET = "streams-origin-offset"
TARGET_AGENT = "streams-target-agent"
ERROR_TYPE = "streams-error-type"
ERROR_MESSAGE = "streams-error-message"
FAILED_AT = "streams-failed-at"
TRACEBACK = "streams-traceback"
REPLAY_OF = "streams-replay-of"

#: Headers that describe one trip through the retry path; a replay starts without them.
ROUTING_HEADERS = (ATTEMPTS, DUE_AT, ERROR_TYPE, ERROR_MESSAGE, FAILED_AT, TRACEBACK)

#: How much of a traceback a dead letter keeps.
TRACEBACK_CHARS = 8000

RawHeaders = Mapping[str, bytes] | Iterable[tuple[str, bytes | None]] | None


def read_headers(raw: RawHeaders) -> dict[str, str]:
    """Kafka headers (a mapping or the client's list of pairs) as text; the last of a repeated name wins."""
    if raw is None:
        return {}
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    return {name: (value or b"").decode("utf-8", "replace") for name, value in pairs}


def write_headers(headers: Mapping[str, str | int]) -> list[tuple[str, bytes]]:
    return [(name, str(value).encode()) for name, value in headers.items()]


def failure_headers(
    headers: Mapping[str, str], attempt: int, topic: str, partition: int, offset: int, agent: str, error: BaseException,
) -> dict[str, str | int]:
    """An event's headers after its ``attempt``-th attempt failed: where it came from, for which agent, and why."""
    return {
        **headers,
        ATTEMPTS: attempt,
        ORIGIN_TOPIC: topic,
        ORIGIN_PARTITION: partition,
        ORIGIN_OFFSET: offset,
        TARGET_AGENT: agent,
        ERROR_TYPE: type(error).__name__,
        ERROR_MESSAGE: str(error),
        FAILED_AT: int(time.time() * 1000),
    }


def dead_letter_headers(routing: Mapping[str, str | int], error: BaseException) -> dict[str, str | int]:
    """``failure_headers`` for the dead-letter topic: no due time, and the end of the traceback, which names the
    failing line (Kafka headers are small)."""
    dead = {name: value for name, value in routing.items() if name != DUE_AT}
    dead[TRACEBACK] = "".join(traceback.format_exception(error))[-TRACEBACK_CHARS:]
    return dead


def attempts_made(headers: Mapping[str, str]) -> int:
    """How many times the event was tried before this delivery; a bad value counts as none."""
    value = headers.get(ATTEMPTS, "0")
    return int(value) if value.isdigit() else 0


def due_at(headers: Mapping[str, str], default: float) -> float:
    """The due time in an event's headers, in epoch seconds; ``default`` when it has none."""
    value = headers.get(DUE_AT, "")
    return int(value) / 1000 if value.isdigit() else default


def meant_for(headers: Mapping[str, str], agent: str) -> bool:
    """A retried event is for the agent that failed on it; any other event is for every agent."""
    return headers.get(TARGET_AGENT, agent) == agent


def tier_for(tiers: tuple[float, ...], remaining: float) -> float:
    """The longest tier that does not overshoot, or the shortest when every tier would."""
    fitting = [tier for tier in tiers if tier <= remaining]
    return fitting[-1] if fitting else tiers[0]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed event again, and when to give up on it."""

    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_attempts: int = 3
    jitter: float = 0.0
    max_delay: float = 3600.0
    missing_entity_attempts: int = 3

    @classmethod
    def from_settings(cls, retry: RetrySettings) -> RetryPolicy:
        return cls(
            retry.initial_delay, retry.multiplier, retry.max_attempts, retry.jitter, retry.max_delay,
            retry.missing_entity_attempts,
        )

    def attempts_allowed(self, error: BaseException) -> int:
        if isinstance(error, PermanentError):
            return 1
        if isinstance(error, EntityNotFoundError):
            return self.missing_entity_attempts
        return self.max_attempts

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); jitter only ever adds."""
        delay = min(self.initial_delay * self.multiplier ** (attempt - 1), self.max_delay)
        return delay * (1 + random.uniform(0, self.jitter)) if self.jitter else delay

    def next_delay(self, error: BaseException, attempt: int) -> float | None:
        """The wait before the next attempt, or None when the event belongs in the dead-letter topic."""
        return self.backoff(attempt) if attempt < self.attempts_allowed(error) else None
