"""Consumer lag and assignment per topic, and each state of the state engine, for /health.

Lag and assignments are the consumer group's, asked of the broker (streams.kafka.lag), so any
worker gives the same answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaException

from streams.kafka.lag import GroupReader
from streams.state.engine import State
from streams.state.remote import EngineClient


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


def state_lag(reader: GroupReader, engine: EngineClient, state: State[Any]) -> int:
    """Events of ``state``'s source the engine's consumer group has not folded yet."""
    return reader.lag(engine.group_id, [state.source]).get(state.source, 0)


def restore_progress(engine: EngineClient, state: State[Any]) -> list[dict[str, object]]:
    return [
        {"partition": progress.partition, "restored": progress.restored, "records_left": progress.records_left,
         "records_per_second": round(progress.rate()), "done": progress.finished is not None}
        for progress in sorted(engine.restores(state), key=lambda progress: progress.partition)
    ]


async def state_health(reader: GroupReader, engine: EngineClient, healthy_below: int) -> dict[str, dict[str, object]]:
    """Per state: the engine running, joining its group or stopped; the partitions it holds here, their restores,
    and the group's lag on the state's source; healthy only once running with little lag."""
    engine_status = engine.status()
    states: dict[str, dict[str, object]] = {}
    for state in engine.states:
        health: dict[str, object] = {
            "state": engine_status, "partitions": engine.partitions(state),
            "standby_partitions": engine.standby_partitions(state), "restores": restore_progress(engine, state),
        }
        try:
            lag = await asyncio.to_thread(state_lag, reader, engine, state)
        except KafkaException as exc:
            health["error"] = f"cannot read consumer lag from the broker: {exc.args[0]}"
        else:
            status = "lagging" if lag >= healthy_below else "healthy" if engine_status == "running" else engine_status
            health.update(lag=lag, status=status)
        states[state.name] = health
    return states
