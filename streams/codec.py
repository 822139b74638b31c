"""Avro on the wire: typed events to bytes and back, framed so a reader can find the writer's schema.

The default framing is Avro's single-object encoding (C3 01, the 8-byte CRC-64-AVRO fingerprint,
then the Avro binary), resolved against schemas/ with no registry server. With a Schema Registry
URL configured, the Confluent framing (byte 0, a 4-byte schema id) is used instead.

Decoding never raises: bytes that cannot be decoded come back as an UndecodableEvent that keeps
them whole, so an agent can route them aside instead of crashing on them.
"""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any, Protocol, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import parse_schema
from fastavro.validation import ValidationError, validate
from faust.serializers import codecs

from streams.errors import PermanentError
from streams.events import EVENT_TYPES, Event, UndecodableEvent
from streams.schemas import KnownSchema, SchemaStore, UnknownSchemaError, know

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
CODEC_NAME = "avro"


class EventValidationError(PermanentError, ValueError):
    """An event does not match its schema; ``field`` names the offending field."""

    def __init__(self, event_type: str, field: str, message: str) -> None:
        super().__init__(f"{event_type}: field {field!r}: {message}")
        self.event_type = event_type
        self.field = field


class Framing(Protocol):
    """How the writer's schema is named in front of the Avro body."""

    def header(self, schema: KnownSchema) -> bytes: ...

    def writer(self, payload: bytes) -> tuple[KnownSchema, int]:
        """The writer's schema and where the Avro body starts; raises on unknown framing."""
        ...


class SingleObjectFraming:
    """Avro single-object encoding, resolved by fingerprint against the local schema store."""

    def __init__(self, store: SchemaStore) -> None:
        self.store = store

    def header(self, schema: KnownSchema) -> bytes:
        return SINGLE_OBJECT_MAGIC + schema.fingerprint

    def writer(self, payload: bytes) -> tuple[KnownSchema, int]:
        if payload[:2] != SINGLE_OBJECT_MAGIC or len(payload) < 10:
            raise UnknownSchemaError("not Avro single-object encoding (no C3 01 marker)")
        return self.store.by_fingerprint(payload[2:10]), 10


class ConfluentFraming:
    """Confluent wire format, with schemas registered under their record's full name."""

    def __init__(self, registry_url: str) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self.client = SchemaRegistryClient({"url": registry_url})
        self._ids: dict[str, int] = {}
        self._writers: dict[int, KnownSchema] = {}

    def header(self, schema: KnownSchema) -> bytes:
        schema_id = self._ids.get(schema.name)
        if schema_id is None:
            from confluent_kafka.schema_registry import Schema

            schema_id = self.client.register_schema(schema.name, Schema(schema.json, "AVRO"))
            self._ids[schema.name] = schema_id
        return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")

    def writer(self, payload: bytes) -> tuple[KnownSchema, int]:
        if payload[:1] != CONFLUENT_MAGIC or len(payload) < 5:
            raise UnknownSchemaError("not Confluent framing (no magic byte 0)")
        schema_id = int.from_bytes(payload[1:5], "big")
        writer = self._writers.get(schema_id)
        if writer is None:
            try:
                registered = self.client.get_schema(schema_id)
            except Exception as exc:
                raise UnknownSchemaError(f"schema id {schema_id} not found in the registry: {exc}") from exc
            writer = know(parse_schema(json.loads(cast(str, registered.schema_str))))
            self._writers[schema_id] = writer
        return writer, 5


def record_paths(schema: Any, path: str = "") -> dict[str, str]:
    """Each nested record's full name mapped to where it sits in the event ('' for the event, 'filters.')."""
    if isinstance(schema, list):
        return {name: shown for branch in schema for name, shown in record_paths(branch, path).items()}
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return {}
    paths = {schema["name"]: path}
    for field in schema["fields"]:
        paths.update(record_paths(field["type"], f"{path}{field['name']}."))
    return paths


def field_path(schema: KnownSchema, fastavro_field: str) -> str:
    """Turn fastavro's 'streams.exports.ExportFilters.posts_limit' into 'filters.posts_limit'."""
    record, _, name = fastavro_field.rpartition(".")
    path = record_paths(schema.parsed).get(record)
    return fastavro_field if path is None else path + name


def explain_invalid(event: Event, schema: KnownSchema, record: dict[str, Any]) -> None:
    """Ask fastavro about a record the strict writer and its check were not sure of; raise EventValidationError
    if it is invalid."""
    try:
        validate(record, schema.parsed, raise_errors=True)
    except ValidationError as exc:
        error = exc.errors[0]
        raise EventValidationError(
            type(event).__name__,
            field_path(schema, error.field),
            f"{error.datum!r} is not a valid {json.dumps(error.schema)}",
        ) from None


class EventCodec:
    """Encodes and decodes typed events with one framing; one instance per process."""

    def __init__(self, store: SchemaStore, framing: Framing) -> None:
        self.store = store
        self.framing = framing
        self._writers: dict[str, tuple[KnownSchema, bytes]] = {}

    def writer(self, name: str) -> tuple[KnownSchema, bytes]:
        """The current schema of that name and the framing header it is written with, made once."""
        writer = self._writers.get(name)
        if writer is None:
            schema = self.store.by_name(name)
            writer = self._writers[name] = (schema, self.framing.header(schema))
        return writer

    def encode(self, event: Event) -> bytes:
        """The event framed and Avro-encoded; raises EventValidationError for an event its schema rejects."""
        schema, header = self.writer(event.schema)
        record = event.to_avro()
        out = BytesIO()
        out.write(header)
        if schema.writer_gaps_closed(record):
            try:
                schemaless_writer(out, schema.parsed, record, strict=True)
                return out.getvalue()
            except Exception:  # not necessarily invalid (strict refuses a missing field that has a default)
                out.seek(len(header))
                out.truncate()
        explain_invalid(event, schema, record)
        schemaless_writer(out, schema.parsed, record)
        return out.getvalue()

    def decode(self, payload: bytes) -> Event | UndecodableEvent:
        try:
            writer, offset = self.framing.writer(payload)
            event_type = EVENT_TYPES.get(writer.name)
            if event_type is None:
                return UndecodableEvent(payload, f"no event type for schema {writer.name!r}")
            return event_type.from_avro(self.record(payload, writer, offset))
        except Exception as exc:
            return UndecodableEvent(payload, f"{type(exc).__name__}: {exc}")

    def read_named(self, payload: bytes) -> tuple[str, dict[str, Any]]:
        """The full name of the record's schema and the Avro record, for folds that need no typed event; raises on
        bytes that are no known event."""
        writer, offset = self.framing.writer(payload)
        return writer.name, self.record(payload, writer, offset)

    def read(self, payload: bytes, schema: str) -> dict[str, Any] | None:
        """The Avro record when ``payload`` is one of ``schema``, else None; for folds that need no typed event.

        Raises on bytes that are no known event (the family's agent dead-letters those).
        """
        writer, offset = self.framing.writer(payload)
        return self.record(payload, writer, offset) if writer.name == schema else None

    def record(self, payload: bytes, writer: KnownSchema, offset: int) -> dict[str, Any]:
        """The body after the framing, written with ``writer`` and read as the current schema of its name."""
        reader = self.store.by_name(writer.name)
        body = BytesIO(payload)
        body.seek(offset)
        return cast(dict[str, Any], schemaless_reader(body, writer.parsed, None if reader is writer else reader.parsed))


class FaustAvroCodec(codecs.Codec):
    """Faust's side of the EventCodec, registered under the name 'avro'."""

    def __init__(self, event_codec: EventCodec) -> None:
        super().__init__()
        self.event_codec = event_codec

    def _dumps(self, obj: Any) -> bytes:
        return self.event_codec.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self.event_codec.decode(s)


def build_codec(registry_url: str | None, store: SchemaStore | None = None) -> EventCodec:
    store = store or SchemaStore()
    framing: Framing = ConfluentFraming(registry_url) if registry_url else SingleObjectFraming(store)
    return EventCodec(store, framing)


def register_faust_codec(event_codec: EventCodec) -> None:
    codecs.register(CODEC_NAME, FaustAvroCodec(event_codec))
