"""Events dropped from agent buffers give their reference back, and no commit passes them.

Faust hands a message to every agent reading its topic and counts one reference per agent; the
message is acknowledged, and its offset may be committed, once every reference is given back.
At a rebalance, at a stop and when a recovery ends, Faust empties the agents' buffers, and an
event dropped there never gives its reference back. Faust then waits, before it lets partitions
go, until every message some agent has taken is acknowledged (Consumer.wait_empty); a message
that one agent had taken and another had dropped is waited for until the time runs out. A
worker leaving the group waited its full 120 s and was killed, and the rebalance when a worker
joined stalled the same way: a slow users agent's buffer was emptied while the follows agent
had already taken the same UserCreated events.

Here a dropped event (emptied from a buffer, or its put into a full buffer cancelled) gives its
reference back, and its message is marked dropped. An acknowledgement is recorded for a commit
only when the message was not dropped, was fetched in the consumer's current generation, and
flow control is on: Faust's streams also acknowledge events they skip because their generation
is stale or flow control is off, and a commit past those would lose them for the agent that
skipped them. What is not recorded is read again from the committed offset, by this worker
after the rebalance or by the partition's next owner; handlers and folds are idempotent.
"""

from __future__ import annotations

import asyncio
from typing import Any
from weakref import WeakSet

import faust
from faust.events import Event
from faust.transport.consumer import Consumer
from faust.types.tuples import Message, ack_lock
from mode.utils.queues import ThrowableQueue


def give_back_dropped_events(app: faust.App) -> None:
    """Patch Faust's agent buffers and its consumer's acknowledgements, once per process."""
    if getattr(ThrowableQueue.clear, "gives_back_dropped_events", False):
        return
    dropped: WeakSet[Message] = WeakSet()
    clear, put, ack = ThrowableQueue.clear, ThrowableQueue.put, Consumer.ack

    def drop(item: Any) -> None:
        if isinstance(item, Event):
            dropped.add(item.message)
            item.message.ack(app.consumer)

    def clearing(queue: ThrowableQueue) -> None:
        for item in list(queue._queue):  # type: ignore[attr-defined]
            drop(item)
        clear(queue)

    async def putting(queue: ThrowableQueue, item: Any) -> None:
        try:
            await put(queue, item)
        except asyncio.CancelledError:
            drop(item)
            raise

    def acknowledging(consumer: Consumer, message: Message) -> bool:
        current = message.generation_id in (None, consumer.app.consumer_generation_id)
        if message in dropped or not current or not consumer.app.flow_control.is_active():
            with ack_lock:
                message.acked = True
                consumer._unacked_messages.discard(message)
            return False
        return ack(consumer, message)

    clearing.gives_back_dropped_events = True  # type: ignore[attr-defined]
    ThrowableQueue.clear = clearing  # type: ignore[method-assign, assignment]
    ThrowableQueue.put = putting  # type: ignore[method-assign, assignment]
    Consumer.ack = acknowledging  # type: ignore[method-assign, assignment]
