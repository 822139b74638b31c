"""Acknowledgements in offset order, whatever order the handlers finish in.

Faust commits a partition up to the first gap in its acknowledged offsets, but it does not see a
gap at the head: with offset 5 still being handled and 6, 7 acknowledged, it commits 8, and a
crash then loses 5 (``Consumer._new_offset`` compares the lowest acknowledged offset with the
committed one off by one, and not at all before the first commit). Events handled side by side
(``streams.lanes``) finish out of order, so each one's acknowledgement waits here until every
earlier event of its partition is done too.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

from faust.types import TP, EventT


class InOrderAcks:
    def __init__(self) -> None:
        self.pending: dict[TP, deque[list]] = defaultdict(deque)

    def received(self, event: EventT) -> Callable[[], None]:
        """Note ``event`` as taken from its partition; the callable returned says it is done."""
        tp = event.message.tp
        entry = [event, False]
        self.pending[tp].append(entry)

        def done() -> None:
            entry[1] = True
            self.release(tp)

        return done

    def release(self, tp: TP) -> None:
        queue = self.pending[tp]
        while queue and queue[0][1]:
            queue.popleft()[0].ack()
