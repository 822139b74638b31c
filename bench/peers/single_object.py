"""The signup pipeline's per-event work, shared by the raw loop and the Quix pipeline so both do the same.

The project's codec frames Avro as C3 01, the writer's 8-byte fingerprint, then schemaless Avro.
This module imports only fastavro, so the peers' own virtualenv can use it as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader

#: Where the Avro body starts: 2 marker bytes and the 8-byte fingerprint.
BODY_START = 10


def read_single_object(payload: bytes, writers: Mapping[bytes, Any]) -> dict[str, Any]:
    """The record, read with the writer's parsed schema found by the payload's fingerprint."""
    body = BytesIO(payload)
    body.seek(BODY_START)
    return schemaless_reader(body, writers[payload[2:BODY_START]], None)


def signup_day(record: Mapping[str, Any]) -> str:
    """The UTC day of a decoded UserCreated, the key signups are counted under."""
    return record["envelope"]["created_at"].date().isoformat()
