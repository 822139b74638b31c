"""The retry policy and the relay's routing, without a broker: pure functions of headers and time."""

import asyncio
import random

import pytest

from streams.errors import EntityNotFoundError, PermanentError
from streams.relay import Hop, next_hop, release_time
from streams.retry import (
    ATTEMPTS, DUE_AT, ORIGIN_PARTITION, ORIGIN_TOPIC, TARGET_AGENT, RetryPolicy, attempts_made, meant_for,
    read_headers, tier_for,
)
from streams.services.email import Mailer, SmtpRejectedError, SmtpUnavailableError
from streams.settings import SmtpSettings, load_settings

TIERS = {0.25: "retry-250ms", 1.0: "retry-1000ms", 4.0: "retry-4000ms", 16.0: "retry-16000ms"}


def test_backoff_doubles_from_one_second_by_default() -> None:
    policy = RetryPolicy.from_settings(load_settings().retry)
    assert [policy.backoff(attempt) for attempt in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert RetryPolicy(max_delay=5.0).backoff(10) == 5.0


def test_jitter_only_ever_adds_up_to_its_fraction() -> None:
    random.seed(3)
    policy = RetryPolicy(jitter=0.25)
    delays = [policy.backoff(2) for _ in range(2000)]
    assert 2.0 <= min(delays) and max(delays) <= 2.5
    assert max(delays) - min(delays) > 0.4


def test_permanent_errors_go_straight_to_dead_letters_and_missing_entities_have_their_own_budget() -> None:
    policy = RetryPolicy(max_attempts=5, missing_entity_attempts=2)
    assert policy.next_delay(PermanentError("bad"), 1) is None
    assert policy.next_delay(EntityNotFoundError("no user"), 1) == 1.0
    assert policy.next_delay(EntityNotFoundError("no user"), 2) is None
    assert [policy.next_delay(ConnectionError("down"), n) for n in (1, 4, 5)] == [1.0, 8.0, None]


def test_an_event_waits_in_the_longest_tier_that_does_not_overshoot() -> None:
    tiers = tuple(sorted(TIERS))
    assert [tier_for(tiers, remaining) for remaining in (0.1, 0.25, 0.9, 1.0, 3.9, 4.0, 100.0)] == [
        0.25, 0.25, 0.25, 1.0, 1.0, 4.0, 16.0,
    ]


def test_a_record_is_sent_when_due_if_that_is_near_and_else_when_its_tier_has_held_it() -> None:
    assert release_time(11.0, {DUE_AT: "10500"}) == 10.5
    assert release_time(11.0, {DUE_AT: "12500"}) == 12.5
    assert release_time(11.0, {DUE_AT: "30000"}) == 11.0
    assert release_time(11.0, {}) == 11.0


def test_a_due_event_returns_to_its_origin_partition_and_one_with_time_left_moves_tier() -> None:
    headers = {ORIGIN_TOPIC: "email-events", ORIGIN_PARTITION: "3", DUE_AT: "20000"}
    assert next_hop(headers, 20.0, TIERS, "dead-letters") == Hop("email-events", 3)
    assert next_hop(headers, 14.5, TIERS, "dead-letters") == Hop("retry-4000ms")
    assert next_hop({ORIGIN_TOPIC: "user-events", DUE_AT: "1000"}, 2.0, TIERS, "dead-letters") == Hop("user-events", None)
    lost = next_hop({DUE_AT: "1000"}, 2.0, TIERS, "dead-letters")
    assert lost.topic == "dead-letters" and dict(lost.headers)["streams-error-type"] == b"MissingOrigin"


def test_retried_events_are_for_the_agent_that_failed_and_headers_read_from_any_client() -> None:
    headers = read_headers([(TARGET_AGENT, b"emails"), (ATTEMPTS, b"2"), ("trace", None)])
    assert headers == {TARGET_AGENT: "emails", ATTEMPTS: "2", "trace": ""}
    assert meant_for(headers, "emails") and not meant_for(headers, "signups")
    assert meant_for({}, "signups")
    assert attempts_made(headers) == 2 and attempts_made({ATTEMPTS: "x"}) == 0 and attempts_made({}) == 0


@pytest.mark.parametrize(("code", "error"), [(451, SmtpUnavailableError), (550, SmtpRejectedError)])
def test_a_temporary_smtp_refusal_is_retryable_and_a_permanent_one_is_not(smtp_server, code: int, error: type) -> None:
    smtp_server.inbox.refuse("bob@example.com", code=code)
    mailer = Mailer(SmtpSettings(port=smtp_server.port))
    with pytest.raises(error) as raised:
        asyncio.run(mailer.send("bob@example.com", "hi", "there"))
    assert isinstance(raised.value, PermanentError) == (code >= 500)
    assert str(code) in str(raised.value)
