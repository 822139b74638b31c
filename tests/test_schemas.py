"""Schemas on disk, their fingerprints, and the typed events bound to them."""

from dataclasses import fields

import pytest

from streams.events import EVENT_TYPES
from streams.schemas import SchemaStore, UnknownSchemaError, crc64_fingerprint


def test_fingerprint_matches_the_avro_specification_test_vector() -> None:
    # The Avro reference implementation fingerprints the schema "null" as 0x63dd24e7cc258f8a.
    assert crc64_fingerprint("null") == (0x63DD24E7CC258F8A).to_bytes(8, "little")


def test_every_event_type_has_a_schema_with_the_same_fields() -> None:
    store = SchemaStore()
    for name, event_type in EVENT_TYPES.items():
        schema_fields = [field["name"] for field in store.by_name(name).parsed["fields"]]
        assert schema_fields == [field.name for field in fields(event_type)], name


def test_envelope_carries_id_type_time_attempts_and_metadata() -> None:
    envelope = SchemaStore().by_name("streams.Envelope").parsed
    types = {field["name"]: field["type"] for field in envelope["fields"]}
    assert types["id"] == {"type": "string", "logicalType": "uuid"}
    assert types["created_at"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert types["attempts"] == "int"
    assert types["metadata"] == {"type": "map", "values": "string"}
    assert types["type"] == "string"


def test_older_schema_versions_are_known_by_fingerprint_only() -> None:
    store = SchemaStore()
    current = store.by_name("streams.users.UserCreated")
    assert store.by_fingerprint(current.fingerprint) is current
    assert len(store._by_fingerprint) == len(store.names()) + 1


def test_unknown_names_and_fingerprints_raise_a_typed_error() -> None:
    store = SchemaStore()
    with pytest.raises(UnknownSchemaError, match="no schema named"):
        store.by_name("streams.users.Nope")
    with pytest.raises(UnknownSchemaError, match="0102030405060708"):
        store.by_fingerprint(bytes(range(1, 9)))


def test_every_event_type_is_keyed_by_one_of_its_own_fields_and_has_a_family_topic() -> None:
    from streams.settings import load_settings

    topics = load_settings().topics
    for event_type in EVENT_TYPES.values():
        assert event_type.key_field in {field.name for field in fields(event_type)}, event_type
        assert topics.for_family(event_type.family).endswith("-events"), event_type
