"""Avro single-object encoding, evolution, and bad bytes that must never raise."""

import json
import uuid
from datetime import datetime, timezone
from io import BytesIO

import pytest
from fastavro import schemaless_writer

from streams.codec import EventValidationError, SingleObjectFraming, build_codec
from streams.events import Envelope, UndecodableEvent, UserCreated, UserUpdated
from streams.schemas import SCHEMA_DIR, SchemaStore

CREATED_AT = datetime(2026, 11, 22, 8, 30, tzinfo=timezone.utc)


def user_created(**changes: object) -> UserCreated:
    values = {"user_id": "42", "email": "ada@example.com", "username": "ada", "full_name": "Ada Lovelace"}
    values.update(changes)
    return UserCreated(Envelope(uuid.uuid4(), "UserCreated", CREATED_AT, 0, {"source": "test"}), **values)


def test_encoding_is_single_object_with_the_writer_fingerprint() -> None:
    codec = build_codec(None)
    event = user_created()
    payload = codec.encode(event)
    assert payload[:2] == b"\xc3\x01"
    assert payload[2:10] == codec.store.by_name(UserCreated.schema).fingerprint
    assert codec.decode(payload) == event


def test_user_updated_round_trips_with_only_changed_fields() -> None:
    codec = build_codec(None)
    event = UserUpdated(Envelope.new("UserUpdated"), "42", bio="Hello")
    decoded = codec.decode(codec.encode(event))
    assert decoded == event
    assert decoded.email is None


def test_reader_on_newer_schema_reads_what_the_older_schema_wrote() -> None:
    store = SchemaStore()
    old = json.loads((SCHEMA_DIR / "history" / "streams.users.UserCreated.v1.avsc").read_text())
    writer = store.add_writer(old)
    assert writer.fingerprint != store.by_name(UserCreated.schema).fingerprint
    body = BytesIO()
    envelope = {"id": str(uuid.uuid4()), "type": "UserCreated", "created_at": CREATED_AT, "attempts": 1, "metadata": {}}
    schemaless_writer(body, writer.parsed, {"envelope": envelope, "user_id": "7", "email": "o@example.com", "username": "old"})
    decoded = build_codec(None, store).decode(b"\xc3\x01" + writer.fingerprint + body.getvalue())
    assert isinstance(decoded, UserCreated)
    assert (decoded.user_id, decoded.username, decoded.full_name) == ("7", "old", None)
    assert decoded.envelope.attempts == 1


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "no C3 01 marker"),
        (b"not avro at all", "no C3 01 marker"),
        (b"\xc3\x01" + bytes(8) + b"\x02", "no schema with fingerprint 0000000000000000"),
    ],
)
def test_bad_bytes_decode_to_an_undecodable_event_that_keeps_them(payload: bytes, reason: str) -> None:
    decoded = build_codec(None).decode(payload)
    assert isinstance(decoded, UndecodableEvent)
    assert decoded.payload == payload
    assert reason in decoded.reason


def test_truncated_avro_body_is_undecodable_not_an_exception() -> None:
    codec = build_codec(None)
    payload = codec.encode(user_created())[:-5]
    decoded = codec.decode(payload)
    assert isinstance(decoded, UndecodableEvent)
    assert decoded.payload == payload


def test_missing_field_names_the_field() -> None:
    with pytest.raises(EventValidationError) as error:
        build_codec(None).encode(user_created(email=None))
    assert error.value.field == "email"
    assert "'email'" in str(error.value)


def test_mistyped_envelope_field_names_the_envelope_field() -> None:
    event = UserCreated(Envelope("not-a-uuid-at-all", "UserCreated", "yesterday", 0, {}), "1", "a@b.c", "a")
    with pytest.raises(EventValidationError) as error:
        build_codec(None).encode(event)
    assert error.value.field.startswith("envelope.")


def test_framing_rejects_a_short_payload() -> None:
    framing = SingleObjectFraming(SchemaStore())
    with pytest.raises(Exception, match="single-object"):
        framing.writer(b"\xc3\x01\x00")
