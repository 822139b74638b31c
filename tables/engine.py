"""The worker's state engine and every state it folds: it runs beside the agents for as long as the worker runs."""

from __future__ import annotations

from streams.app import app, settings
from streams.state.engine import EngineService, State, StateEngine
from streams.topics import state_group_id
from tables.engagement import post_engagement
from tables.signups import signup_partials
from tables.user_stats import follows, user_stats

STATES: list[State] = [signup_partials, post_engagement, follows, user_stats]

state_engine = StateEngine(
    settings.kafka, state_group_id(settings.kafka.group_id), STATES, settings.state.data_dir / "state",
    settings.state.batch_size, settings.state.batch_window, settings.state.session_timeout, settings.topics.partitions,
    settings.topics.replication_factor, settings.topics.dead_letters,
    f"{settings.web.advertised_host or settings.web.host}:{settings.web.port}", settings.state.standby_replicas,
)


@app.service
class StateEngineService(EngineService):
    engine = state_engine
