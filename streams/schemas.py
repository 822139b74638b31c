"""Schema lookup: every .avsc in schemas/, by full name (for readers) and by fingerprint (for writers).

Files are named after the record's full name (``streams.users.UserCreated.avsc``) so fastavro
resolves references between files itself. Older versions kept under ``schemas/history/`` are
known as writers only, which lets a reader on the current schema read what they wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fastavro.schema import expand_schema, fingerprint, load_schema, parse_schema, to_parsing_canonical_form
from fastavro.types import Schema

from streams.errors import StreamsError
from streams.record_check import Check, compile_check

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
ENVELOPE = "streams.Envelope"


class UnknownSchemaError(StreamsError):
    """No schema with that name or fingerprint is known."""


@dataclass(frozen=True)
class KnownSchema:
    name: str
    parsed: dict[str, Any]
    fingerprint: bytes
    writer_gaps_closed: Check = field(compare=False, repr=False)

    @property
    def json(self) -> str:
        """The expanded schema as JSON, as a schema registry wants it."""
        return json.dumps(expand_schema(self.parsed))


def crc64_fingerprint(parsed: dict[str, Any]) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of the schema's canonical form."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def know(schema: Schema) -> KnownSchema:
    """A record schema as fastavro parsed it; every event schema is a record, a JSON object."""
    parsed = cast(dict[str, Any], schema)
    return KnownSchema(parsed["name"], parsed, crc64_fingerprint(parsed), compile_check(parsed))


class SchemaStore:
    """Current schemas by name, and every known writer schema by fingerprint."""

    def __init__(self, directory: Path = SCHEMA_DIR) -> None:
        self.directory = directory
        self._by_name: dict[str, KnownSchema] = {}
        self._by_fingerprint: dict[bytes, KnownSchema] = {}
        for path in sorted(directory.glob("*.avsc")):
            schema = know(load_schema(str(path)))
            self._by_name[schema.name] = schema
            self._by_fingerprint[schema.fingerprint] = schema
        for path in sorted(directory.glob("history/*.avsc")):
            self.add_writer(json.loads(path.read_text()))

    def add_writer(self, schema: dict[str, Any]) -> KnownSchema:
        """Make an older (or foreign) version of a known record decodable by its fingerprint."""
        named = {ENVELOPE: self.by_name(ENVELOPE).parsed}
        known = know(parse_schema(schema, named_schemas=named, expand=True))
        self._by_fingerprint[known.fingerprint] = known
        return known

    def by_name(self, name: str) -> KnownSchema:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSchemaError(f"no schema named {name!r} in {self.directory}") from None

    def by_fingerprint(self, value: bytes) -> KnownSchema:
        try:
            return self._by_fingerprint[value]
        except KeyError:
            raise UnknownSchemaError(f"no schema with fingerprint {value.hex()}") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)
