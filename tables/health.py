"""Consumer lag per topic and the recovery state of each table, for /health.

Lag is measured at the broker, for the whole consumer group: for every partition, the last
offset a read_committed consumer can reach minus the offset the group committed (or the start of
the log, when it committed none). So any worker gives the same answer, and a worker that is
stuck shows up as lag even though it cannot report on itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from streams.folding_lane import FoldingLane

TIMEOUT = 10.0


def group_lag(admin: AdminClient, group: str, topics: Iterable[str]) -> dict[str, int]:
    """Events not yet processed by ``group``, per topic."""
    metadata = admin.list_topics(timeout=TIMEOUT)
    partitions = [
        TopicPartition(topic, partition)
        for topic in topics if topic in metadata.topics
        for partition in metadata.topics[topic].partitions
    ]
    if not partitions:
        return {}
    ends = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in partitions}, isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=TIMEOUT,
    )
    starts = admin.list_offsets({tp: OffsetSpec.earliest() for tp in partitions}, request_timeout=TIMEOUT)
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    committed = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group].result().topic_partitions
    position = {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
    lag: dict[str, int] = {}
    for tp in partitions:
        end = ends[tp].result().offset
        start = starts[tp].result().offset
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - position.get((tp.topic, tp.partition), start))
    return lag


async def topic_health(admin: AdminClient, group: str, topics: list[str], healthy_below: int) -> dict[str, Any]:
    """Lag and status per topic; the broker's error when it cannot be asked."""
    try:
        lag = await asyncio.to_thread(group_lag, admin, group, topics)
    except KafkaException as exc:
        return {"error": f"cannot read consumer lag from the broker: {exc.args[0]}"}
    return {
        topic: {"lag": lag[topic], "status": "healthy" if lag[topic] < healthy_below else "lagging"}
        for topic in topics if topic in lag
    }


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


def lane_lag(admin: AdminClient, lane: FoldingLane) -> int:
    """Events the lane's own consumer group has not folded yet."""
    return group_lag(admin, lane.group_id, [lane.source]).get(lane.source, 0)


async def lane_health(
    admin: AdminClient, lanes: Iterable[FoldingLane], healthy_below: int
) -> dict[str, dict[str, object]]:
    """Per folding lane: running, joining its group or stopped, the source partitions it holds here, and its
    group's lag; healthy only once running with little lag."""
    states: dict[str, dict[str, object]] = {}
    for lane in lanes:
        lane_state = lane.state()
        state: dict[str, object] = {"state": lane_state, "partitions": lane.partitions()}
        try:
            lag = await asyncio.to_thread(lane_lag, admin, lane)
        except KafkaException as exc:
            state["error"] = f"cannot read consumer lag from the broker: {exc.args[0]}"
        else:
            status = "lagging" if lag >= healthy_below else "healthy" if lane_state == "running" else lane_state
            state.update(lag=lag, status=status)
        states[lane.name] = state
    return states
