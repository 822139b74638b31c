"""The worker's state engine and every state it folds.

The engine runs in a process of its own, which the worker starts, supervises and stops with
itself (``streams.state.remote``); ``state_engine`` is the worker's handle on it. Run as
``python -m tables.engine`` this module is that process.
"""

from __future__ import annotations

import asyncio
import secrets
import sys

import mode

from streams.app import app, settings
from streams.state.engine import State, StateEngine
from streams.state.remote import (
    EngineClient, EngineProcess, engine_address, read_handshake, serve, wait_until_answering,
)
from streams.topics import state_group_id
from tables.engagement import post_engagement
from tables.signups import signup_partials
from tables.user_stats import follows, user_stats

STATES: list[State] = [signup_partials, post_engagement, follows, user_stats]
GROUP_ID = state_group_id(settings.kafka.group_id)
#: How long a starting worker waits for its engine process to answer.
START_TIMEOUT_S = 60.0


def build_engine() -> StateEngine:
    return StateEngine(
        settings.kafka, GROUP_ID, STATES, settings.state.data_dir / "state", settings.state.batch_size,
        settings.state.batch_window, settings.kafka.session_timeout, settings.topics.partitions,
        settings.topics.replication_factor, settings.topics.dead_letters,
        f"{settings.web.advertised_host or settings.web.host}:{settings.web.port}", settings.state.standby_replicas,
    )


address, authkey = engine_address(), secrets.token_bytes(32)
state_engine = EngineClient(STATES, GROUP_ID, settings.topics.partitions, address, authkey)
engine_process = EngineProcess([sys.executable, "-m", "tables.engine"], address, authkey)


@app.service
class StateEngineService(mode.Service):
    """Starts the engine process with the worker, and stops it with the worker."""

    async def on_start(self) -> None:
        engine_process.start()
        await asyncio.to_thread(
            wait_until_answering, state_engine, START_TIMEOUT_S, lambda: not engine_process.stopping.is_set(),
        )

    async def on_stop(self) -> None:
        await asyncio.to_thread(engine_process.stop)


if __name__ == "__main__":
    serve(build_engine(), *read_handshake())
