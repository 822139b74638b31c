"""Consumer lag and assignment per topic, the recovery state of each table and of each lane, for /health.

Lag and assignments are the consumer group's, asked of the broker (streams.kafka.lag), so any
worker gives the same answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
from confluent_kafka import KafkaException

from streams.folding_lane import FoldingLane
from streams.kafka.lag import GroupReader


def topic_states(reader: GroupReader, group: str, topics: list[str], healthy_below: int) -> dict[str, Any]:
    """Per existing topic: the group's lag, whether a member holds it, and a status.

    A topic that exists but that no member of a stable group holds is ``unassigned``: nothing
    consumes it, though it shows no lag behind a commit that never happened.
    """
    lag = reader.lag(group, topics)
    assigned = reader.assigned_topics(group)
    states: dict[str, Any] = {}
    for topic in topics:
        if topic not in lag:
            continue
        held = None if assigned is None else topic in assigned
        status = "unassigned" if held is False else "lagging" if lag[topic] >= healthy_below else "healthy"
        states[topic] = {"lag": lag[topic], "assigned": held, "status": status}
    return states


async def topic_health(reader: GroupReader, group: str, topics: list[str], healthy_below: int) -> dict[str, Any]:
    """Lag, assignment and status per topic; the broker's error when it cannot be asked."""
    try:
        return await asyncio.to_thread(topic_states, reader, group, topics, healthy_below)
    except KafkaException as exc:
        return {"error": f"cannot read the consumer group from the broker: {exc.args[0]}"}


def table_health(app: faust.App) -> dict[str, dict[str, object]]:
    """Per table: ready, or recovering with how many changelog records are still to be read.

    A table is recovering until this worker's first recovery has completed, and again while a
    rebalance gives it partitions to restore.
    """
    recovery = app.tables.recovery  # type: ignore[attr-defined]
    restored = recovery.completed.is_set()
    active, standby = recovery.active_remaining(), recovery.standby_remaining()
    states = {}
    for table in app.tables.values():
        topic = table.changelog_topic.get_topic_name()
        active_left = sum(count for tp, count in active.items() if tp.topic == topic)
        standby_left = sum(count for tp, count in standby.items() if tp.topic == topic)
        states[table.name] = {
            "state": "ready" if restored and not (recovery.in_recovery and active_left) else "recovering",
            "active_remaining": active_left,
            "standby_remaining": standby_left,
        }
    return states


def lane_lag(reader: GroupReader, lane: FoldingLane) -> int:
    """Events the lane's own consumer group has not folded yet."""
    return reader.lag(lane.group_id, [lane.source]).get(lane.source, 0)


async def lane_health(
    reader: GroupReader, lanes: Iterable[FoldingLane], healthy_below: int
) -> dict[str, dict[str, object]]:
    """Per folding lane: running, joining its group or stopped, the source partitions it holds here, and its
    group's lag; healthy only once running with little lag."""
    states: dict[str, dict[str, object]] = {}
    for lane in lanes:
        lane_state = lane.state()
        state: dict[str, object] = {"state": lane_state, "partitions": lane.partitions()}
        try:
            lag = await asyncio.to_thread(lane_lag, reader, lane)
        except KafkaException as exc:
            state["error"] = f"cannot read consumer lag from the broker: {exc.args[0]}"
        else:
            status = "lagging" if lag >= healthy_below else "healthy" if lane_state == "running" else lane_state
            state.update(lag=lag, status=status)
        states[lane.name] = state
    return states
