"""The upstream producer against the real broker: keyed, validated, and loud about failures."""

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streams.codec import EventValidationError, build_codec
from streams.errors import BrokerUnavailableError
from streams.events import PostCreated, PostLiked, UserUpdated
from streams.producer import EventProducer
from streams.settings import load_settings
from tests.kafka_reading import end_offsets, read_all

pytestmark = pytest.mark.kafka


def create_topic(bootstrap: str, name: str, partitions: int = 4) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)


def test_published_events_are_keyed_by_user_id_and_decode_to_what_was_sent(namespace) -> None:
    settings = namespace.settings()
    with EventProducer(settings) as producer:
        created = [producer.publish_user_created({"id": f"user-{n}", "email": f"{n}@example.com", "username": f"u{n}"}) for n in range(20)]
        updated = producer.publish_user_updated({"id": "user-3", "bio": "I like streams"})
    messages = read_all(namespace.bootstrap, settings.topics.user_events, expected=21)
    codec = build_codec(None)
    decoded = {codec.decode(message.value()).id: message for message in messages}
    assert set(decoded) == {event.id for event in [*created, updated]}
    for event in created:
        assert decoded[event.id].key() == event.user_id.encode()
    assert decoded[updated.id].partition() == decoded[created[3].id].partition()
    updated_back = codec.decode(decoded[updated.id].value())
    assert isinstance(updated_back, UserUpdated) and updated_back.bio == "I like streams"


def test_a_bad_field_raises_naming_it_and_nothing_is_sent(namespace) -> None:
    settings = namespace.settings()
    topic = settings.topics.user_events
    create_topic(namespace.bootstrap, topic)
    with EventProducer(settings) as producer:
        with pytest.raises(EventValidationError, match="'email'") as missing:
            producer.publish_user_created({"id": "1", "username": "no-email"})
        with pytest.raises(EventValidationError, match="'username'") as mistyped:
            producer.publish_user_created({"id": "2", "email": "x@example.com", "username": 12345})
    assert (missing.value.field, mistyped.value.field) == ("email", "username")
    assert end_offsets(namespace.bootstrap, topic, 4) == 0


def test_unreachable_broker_raises_a_clear_error_from_flush() -> None:
    settings = load_settings(kafka={"brokers": "127.0.0.1:1"})
    producer = EventProducer(settings)
    producer.publish_user_created({"id": "1", "email": "a@example.com", "username": "a"})
    with pytest.raises(BrokerUnavailableError, match="127.0.0.1:1"):
        producer.flush(timeout=3)


def test_publish_many_sends_nothing_when_any_event_is_bad(namespace) -> None:
    settings = namespace.settings()
    create_topic(namespace.bootstrap, settings.topics.post_events)
    good = [PostCreated.new(post_id=f"p{n}", author_id="a", content="hi") for n in range(5)]
    bad = PostCreated.new(post_id="p9", author_id=None, content="no author")
    with EventProducer(settings) as producer:
        with pytest.raises(EventValidationError, match="'author_id'"):
            producer.publish_many([*good, bad], batch_size=2)
    assert end_offsets(namespace.bootstrap, settings.topics.post_events, 4) == 0


def test_publish_many_delivers_every_event_to_its_family_topic(namespace) -> None:
    settings = namespace.settings()
    events = [PostCreated.new(post_id=f"p{n}", author_id="a", content="hi") for n in range(250)]
    with EventProducer(settings) as producer:
        assert producer.publish_many(events, batch_size=100) == 250
        liked = producer.publish_post_activity("liked", "p1", "u7")
        with pytest.raises(EventValidationError, match="'activity'"):
            producer.publish_post_activity("poked", "p1", "u7")
    messages = read_all(namespace.bootstrap, settings.topics.post_events, expected=251)
    codec = build_codec(None)
    decoded = [codec.decode(message.value()) for message in messages]
    assert sorted(event.id for event in decoded) == sorted(event.id for event in [*events, liked])
    assert [event for event in decoded if isinstance(event, PostLiked)] == [liked]
