"""Source messages as Avro records, for the folds: decoded once, without building typed events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from confluent_kafka import Message

from streams.app import codec
from streams.retry import meant_for, read_headers

#: (offset, the full name of the record's schema, the record)
SourceRecord = tuple[int, str, dict[str, Any]]


def records_for(messages: Sequence[Message], agent: str) -> list[SourceRecord]:
    """Each readable message's record but retries addressed to another agent: ``agent`` folded those the first
    time. Bytes no schema can read are passed over: the family's agent dead-letters them."""
    records = []
    for message in messages:
        headers = cast(list[tuple[str, bytes | None]] | None, message.headers())
        if headers is not None and not meant_for(read_headers(headers), agent):
            continue
        try:
            name, record = codec.read_named(cast(bytes, message.value()))
        except Exception:
            continue
        records.append((cast(int, message.offset()), name, record))
    return records
