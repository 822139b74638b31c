"""Batch folding for agents that keep stream state.

Faust picks the partition of every table write (its local store and its changelog record)
from the event being processed at the time. A batch from ``take_events()`` leaves no such
event in the agent's task, so ``writes_for`` names it explicitly: the batch's own last event,
which (with ``isolated_partitions=True``) is of the same partition as every other in it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from faust import streams as faust_streams
from faust.types import EventT


@contextmanager
def writes_for(batch: Sequence[EventT]) -> Iterator[int]:
    """Route table writes inside the block to the batch's partition, which it yields."""
    last = batch[-1]
    token = faust_streams._current_event.set(weakref.ref(last))
    try:
        yield last.message.partition
    finally:
        faust_streams._current_event.reset(token)
