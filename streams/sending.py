"""Sends that are part of processing one event, committed with that event's offset.

Under exactly-once, Faust keeps one Kafka transaction per source partition and commits the
partition's offsets in it, but a plain ``topic.send`` picks the transaction of the partition it
sends *to*, which may be owned by another worker (and then fails) or be committed apart from the
offset that caused it. A send made while processing partition p belongs in p's transaction: the
record becomes visible exactly when p's offset commits, and never if p's work is aborted.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TP


async def send_for(
    app: faust.App, source: TP, topic: faust.TopicT, key: Any, value: Any, headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Send ``value`` to ``topic`` (partitioned by ``key``) as part of processing ``source``."""
    key_bytes, headers = topic.prepare_key(key, None, headers=headers)  # type: ignore[call-arg]
    value_bytes, headers = topic.prepare_value(value, None, headers=headers)  # type: ignore[call-arg]
    name = topic.get_topic_name()
    transactional_id = None
    if app.in_transaction:
        transactional_id = f"{app.conf.id}-{app.assignor.group_for_topic(source.topic)}-{source.partition}"
    await app.producer.send(name, key_bytes, value_bytes, None, None, headers, transactional_id=transactional_id)
