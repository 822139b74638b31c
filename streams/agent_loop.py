"""The loop every family agent runs: decode, hand the event to its handler, never stop on one event.

A handler that raises does not hold up the partition: the event goes to a delay tier to be tried
again later, or to the dead-letter topic when its error is permanent or its attempts are spent
(``streams.retry``). Bytes no schema can read, and events of another family than the topic's,
go to the dead-letter topic at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, cast

import faust
from faust.types import EventT

from streams import metrics
from streams.acks import InOrderAcks
from streams.db.outage import OutageGate
from streams.errors import PermanentError
from streams.events import Event, UndecodableEvent
from streams.lanes import Lanes
from streams.retry_commits import CommitSoon
from streams.retry import (
    DUE_AT, RetryPolicy, attempts_made, dead_letter_headers, due_at, failure_headers, meant_for, read_headers,
    tier_for, write_headers,
)
from streams.sending import send_for
from streams.topics import Family, RetryTopics

logger = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None]]
#: What a family's agent does, by event type; an event of the family whose type is not here needs nothing of it
#: (the state engine folds it) and is acknowledged at once.
Handlers = Mapping[type[Event], Handler]
#: A priority turn for one event, ``retry=True`` for a retried attempt: ``partial(priorities.turn, family)``.
Turn = Callable[..., AbstractAsyncContextManager[None]]

#: How long a stopping agent lets the events in flight finish.
STOP_GRACE_S = 10.0
#: Retried attempts an agent takes from its stream before it waits for some to finish.
RETRIED_PENDING = 1_000


class UndecodableEventError(PermanentError):
    """The bytes are not an event any known schema can read."""


class WrongTopicError(PermanentError):
    """A valid event of another family than the topic it arrived on: no handler of this topic's agent is meant for it."""

    def __init__(self, event: Event, topic: str, family: Family) -> None:
        super().__init__(
            f"{type(event).__name__} is a {event.family} event and does not belong on {topic}, a {family} topic"
        )


class FailureRouter:
    """Sends what an agent could not handle to a delay tier or to the dead-letter topic, bytes unchanged."""

    def __init__(self, app: faust.App, policy: RetryPolicy, topics: RetryTopics) -> None:
        self.app = app
        self.policy = policy
        self.topics = topics
        self.tiers = tuple(sorted(topics.tiers))
        shortest_backoff = min(policy.initial_delay, policy.max_delay)
        self.commits = CommitSoon(app, within=min(shortest_backoff / 4, app.conf.broker_commit_interval))

    async def failed(self, agent: str, event: EventT, headers: Mapping[str, str], error: BaseException) -> None:
        """Route ``event`` (its headers as read by ``read_headers``) after its handler raised ``error``."""
        message = event.message
        attempt = attempts_made(headers) + 1
        routing = failure_headers(headers, attempt, message.topic, message.partition, message.offset, agent, error)
        labels = (message.topic, agent, type(error).__name__)
        described = describe(event.value)
        delay = self.policy.next_delay(error, attempt)
        if delay is None:
            dead = dead_letter_headers(routing, error)
            await send_for(self.app, message.tp, self.topics.dead_letters, message.key, message.value, write_headers(dead))
            metrics.EVENTS_DEAD_LETTERED.labels(*labels).inc()
            logger.error(
                "dead-lettered %s topic=%s partition=%d offset=%d agent=%s after %d attempt(s): %s: %s",
                described, message.topic, message.partition, message.offset, agent, attempt, type(error).__name__, error,
                extra=log_fields(event, agent, attempt),
            )
            return
        routing[DUE_AT] = int(time.time() * 1000) + round(delay * 1000)
        tier = self.topics.tiers[tier_for(self.tiers, delay)]
        await send_for(self.app, message.tp, tier, message.key, message.value, write_headers(routing))
        self.commits.request()
        metrics.EVENTS_RETRIED.labels(*labels).inc()
        logger.warning(
            "retrying %s agent=%s in %.2fs (attempt %d failed): %s: %s",
            described, agent, delay, attempt, type(error).__name__, error,
            extra=log_fields(event, agent, attempt),
        )


def log_fields(event: EventT, agent: str, attempt: int) -> dict[str, object]:
    """Fields for a log line about ``event``: its id and where it came from."""
    message, value = event.message, event.value
    return {
        "event_id": str(value.id) if isinstance(value, Event) else None,
        "event_type": type(value).__name__, "topic": message.topic, "partition": message.partition,
        "offset": message.offset, "agent": agent, "attempt": attempt,
    }


def describe(value: Event | UndecodableEvent | bytes | None) -> str:
    """How log lines name an event: its id and type, or the size of what could not be read."""
    if isinstance(value, Event):
        return f"event id={value.id} type={type(value).__name__}"
    payload = value.payload if isinstance(value, UndecodableEvent) else value or b""
    return f"undecodable event bytes={len(payload)}"


async def handle_each(
    stream: faust.StreamT, handlers: Handlers, agent: str, family: Family, failures: FailureRouter, turn: Turn,
    in_flight: int, database: OutageGate,
) -> None:
    """Hand every event meant for ``agent`` to its type's handler in its priority turn, up to ``in_flight`` events
    at once (one key's in order); route each failure aside and go on. An event of another family than
    ``family`` fails with ``WrongTopicError``, so it is dead-lettered, not passed over; one of the family
    that no handler wants is acknowledged at once. An event is acknowledged once it and
    every earlier event of its partition are done.

    Retried attempts (events back from a delay tier) wait apart from the fresh events, for their
    family's smaller share of the worker, up to a quarter of ``in_flight`` of them running at once: a burst
    of failing events coming back never takes the slots of the fresh events behind them. Their
    order among themselves is kept per key; against fresh events it was given up when they were
    first sent aside.
    """
    lanes, retried, acks = Lanes(in_flight), Lanes(RETRIED_PENDING), InOrderAcks()
    retried_slots = asyncio.Semaphore(max(1, in_flight // 4))
    run = partial(
        handle_one, handlers=handlers, agent=agent, family=family, failures=failures, turn=turn, database=database,
    )

    async def run_retried(event: EventT, headers: Mapping[str, str], done: Callable[[], None], due: float) -> None:
        async with retried_slots:
            await run(event, headers, done, due=due)

    try:
        async for event in stream.noack().events():  # type: ignore[attr-defined]
            done = acks.received(event)
            headers = read_headers(event.headers)
            value = event.value
            if not meant_for(headers, agent) or (
                isinstance(value, Event) and value.family == family and type(value) not in handlers
            ):
                done()
            elif attempts_made(headers):
                await retried.start(
                    event.message.key, partial(run_retried, event, headers, done, due_at(headers, time.time())),
                )
            else:
                await lanes.start(event.message.key, partial(run, event, headers, done))
        await lanes.drain()
        await retried.drain()
    except asyncio.CancelledError:
        await asyncio.gather(lanes.stop(STOP_GRACE_S), retried.stop(STOP_GRACE_S))
        raise


async def handle_one(
    event: EventT, headers: Mapping[str, str], done: Callable[[], None], handlers: Handlers, agent: str, family: Family,
    failures: FailureRouter, turn: Turn, database: OutageGate, due: float | None = None,
) -> None:
    """Run the handler once, or again after each database outage it meets (``OutageGate.through_outages``); ``due``, in
    epoch seconds, when this is a retried attempt."""
    value = event.value
    topic = event.message.topic
    async with turn(retry=due is not None):
        if due is not None:
            metrics.RETRY_LATENESS_SECONDS.labels(agent).observe(time.time() - due)
        started = time.perf_counter()
        try:
            if isinstance(value, UndecodableEvent):
                raise UndecodableEventError(value.reason)
            decoded = cast(Event, value)
            if decoded.family != family:
                raise WrongTopicError(decoded, topic, family)
            await database.through_outages(partial(handlers[type(decoded)], decoded))
        except Exception as exc:
            metrics.EVENTS_FAILED.labels(topic, agent, type(exc).__name__).inc()
            await failures.failed(agent, event, headers, exc)
        else:
            metrics.EVENTS_PROCESSED.labels(topic, agent).inc()
        metrics.PROCESSING_SECONDS.labels(topic, agent).observe(time.perf_counter() - started)
    done()
