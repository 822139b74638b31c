"""When an agent's buffer fills up, every partition feeding it stops being fetched until it drains.

faust-streaming 0.15 stops fetching only the partition whose record happened to cross the
buffer's high-pressure mark (4/5 full). The topic's other partitions go on being fetched; once
the buffer is completely full, each of their records waits for a free slot, and Faust's single
delivery loop waits with it, so every other topic waits too: with a backlog of emails, views of
posts (high priority) waited 10 s and more. Here, when Faust reports a buffer under pressure or
full, every partition of that topic is paused and resumes as the buffer drains, so the records
already fetched fit in the room left above the mark and delivery never blocks.
"""

from __future__ import annotations

import faust
from faust.sensors import Sensor
from faust.types import TP


class PauseTopicOnFullBuffer(Sensor):
    def __init__(self, app: faust.App) -> None:
        super().__init__()
        self.app = app

    def on_topic_buffer_full(self, tp: TP) -> None:
        handlers = self.app.topics._tp_to_callback  # type: ignore[attr-defined]
        channels = getattr(handlers.get(tp), "channels", ())
        for other, handler in list(handlers.items()):
            resume = getattr(handler, "on_pressure_drop", None)
            if other.topic != tp.topic or resume is None:
                continue
            for channel in channels:
                channel.queue._pending_pressure_drop_callbacks.add(resume)
            self.app.consumer.on_buffer_full(other)


def pause_topics_on_full_buffers(app: faust.App) -> None:
    app.sensors.add(PauseTopicOnFullBuffer(app))
