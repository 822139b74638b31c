"""The worker's web view: the tables as JSON, a live page for people, health, email statistics, metrics.

Every worker answers for every key. A request for one post or user is routed to the worker that
owns the key's partition; a question about all of them (signups, top posts) is put to every
worker that holds part of the table, and the parts are added up here.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import re
from typing import Any
from datetime import date, datetime, timezone
from importlib.resources import files

import faust
from aiohttp import web
from faust.web import Request, Response, View
from yarl import URL
from faust.web.exceptions import ServiceUnavailable, ValidationError as BadRequest
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from sqlalchemy import select

from streams.app import app, sessions, settings
from streams.db.models import EmailStatistics
from streams.db.outage import is_outage
from streams import worker
from streams.kafka.lag import GroupReader
from streams.state.engine import State
from streams.state.remote import AtLeast, EngineUnavailableError
from streams.topics import relay_group_id, tier_topic_names, watched_topic_names
from tables.access import Handler, token_required
from tables.cluster import EngineRouter, answer_for_key, asks_locally, gather, held_part
from tables.engagement import post_engagement
from tables.engine import state_engine
from tables.health import state_health, topic_health
from tables.monitoring import WorkerMetrics, register_collector
from tables.signups import signup_partials, sum_partials
from tables.user_stats import user_stats

#: Entity ids as upstream services issue them; anything else in a URL is a mistake, not a key.
ENTITY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
MAX_TOP = 100

PAGE = files("tables").joinpath("page.html").read_text()


def entity_id(kind: str, value: str) -> str:
    if not ENTITY_ID.fullmatch(value):
        raise BadRequest(f"{kind} id must be 1 to 128 letters, digits or _.:@- starting with a letter or digit")
    return value


def day_param(request: Request, name: str) -> date | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


@web.middleware
async def engine_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A read of the states while the engine process is (re)starting answers 503, as any other brief absence."""
    try:
        return await handler(request)
    except EngineUnavailableError as exc:
        return web.json_response({"error": f"{exc}; try again shortly"}, status=503)


app.web.web_app.middlewares.append(engine_unavailable)  # type: ignore[attr-defined]
if settings.web.token is not None:
    app.web.web_app.middlewares.append(token_required(settings.web.token.get_secret_value()))  # type: ignore[attr-defined]


@app.page("/")
class DashboardPage(View):
    """Live counters, signups per day and the top posts, refreshing by themselves."""

    async def get(self, request: Request) -> Response:
        return self.html(PAGE)


@app.page("/signups")
class SignupsView(View):
    """Total signups, and signups per UTC day between ``from`` and ``to`` (inclusive, both optional)."""

    async def get(self, request: Request) -> Response:
        start, end = day_param(request, "from"), day_param(request, "to")
        if start and end and start > end:
            raise BadRequest(f"from ({start}) is after to ({end})")
        def local() -> dict[str, Any]:
            partitions, items = state_engine.held_items(signup_partials)
            return held_part(partitions, sum_partials(items))

        if asks_locally(request):
            return self.json(local())
        parts = await gather(router, signup_partials, request, local)
        per_day: dict[str, int] = {}
        for part in parts:
            for day, count in part.items():
                per_day[day] = per_day.get(day, 0) + count
        in_range = {
            day: count for day, count in sorted(per_day.items())
            if (start is None or day >= start.isoformat()) and (end is None or day <= end.isoformat())
        }
        body: dict[str, object] = {"total": sum(per_day.values()), "per_day": in_range}
        if start or end:
            body.update({"from": start and start.isoformat(), "to": end and end.isoformat(), "in_range": sum(in_range.values())})
        return self.json(body)


@app.page("/posts/top")
class TopPostsView(View):
    """The posts with the highest engagement rate (ties: more views first), among posts with ``min_views``."""

    async def get(self, request: Request) -> Response:
        limit = int_param(request, "limit", 10, 1, MAX_TOP)
        min_views = int_param(request, "min_views", 1, 0, 10**12)

        def local() -> dict[str, Any]:
            partitions, candidates = state_engine.held_ranked(post_engagement, limit, AtLeast("views", min_views))
            best = heapq.nlargest(limit, candidates, key=lambda item: (item[1].engagement_rate, item[1].views, item[0]))
            return held_part(partitions, [record.as_json(post_id) for post_id, record in best])

        if asks_locally(request):
            return self.json(local())
        parts = await gather(router, post_engagement, request, local)
        posts = [post for part in parts for post in part]
        best = heapq.nlargest(limit, posts, key=lambda post: (post["engagement_rate"], post["views"], post["post_id"]))
        return self.json({"limit": limit, "min_views": min_views, "posts": best})


async def keyed_record(view: View, request: Request, state: State[Any], kind: str, key: str) -> Response:
    """One key's record as JSON, from the worker that holds the key; 404 when the state has none."""
    entity_id(kind, key)

    def local() -> Response:
        record = state_engine.get(state, key)
        if record is None:
            raise view.NotFound(f"no statistics for {kind} {key!r}")
        return view.json(record.as_json(key))

    return await answer_for_key(router, state, key, view, request, local)


@app.page("/posts/{post_id}/engagement")
class PostEngagementView(View):
    """One post's views, likes, comments, shares and engagement rate."""

    async def get(self, request: Request, post_id: str) -> Response:
        return await keyed_record(self, request, post_engagement, "post", post_id)


@app.page("/users/{user_id}/stats")
class UserStatsView(View):
    """One user's posts, followers, following and likes received."""

    async def get(self, request: Request, user_id: str) -> Response:
        return await keyed_record(self, request, user_stats, "user", user_id)


@functools.cache
def group_reader() -> GroupReader:
    """One reader of the consumer groups per worker, made on first use, for /health and the metrics."""
    return GroupReader(settings.kafka)


@app.on_before_shutdown.connect  # type: ignore[arg-type]
def close_group_reader(app: faust.App, **kwargs: object) -> None:
    if group_reader.cache_info().currsize:
        group_reader().close()


#: Where each partition of the state engine is held, for routing requests to the worker holding a key.
router = EngineRouter(state_engine, group_reader, URL(str(app.conf.canonical_url)))


@app.page("/health")
class HealthView(View):
    """Consumer lag, assignment and status per topic, each table's recovery state and each state's; 503 while anything
    is unhealthy, and while the worker is starting or stopping, when it asks the broker nothing."""

    async def get(self, request: Request) -> Response:
        state = worker.state()
        if state != "ready":
            return self.json({"status": state, "checked_at": now()}, status=503)
        lag = await topic_health(group_reader(), app.conf.id, watched_topic_names(settings.topics), settings.state.healthy_lag)
        states = await state_health(group_reader(), state_engine, settings.state.healthy_lag)
        healthy = (
            "error" not in lag and not app.rebalancing
            and all(topic["status"] == "healthy" for topic in lag.values())
            and all(state.get("status") == "healthy" for state in states.values())
        )
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "checked_at": now(),
            "healthy_lag_below": settings.state.healthy_lag,
            "rebalancing": bool(app.rebalancing),
            "topics": lag,
            "states": states,
        }
        return self.json(body, status=200 if healthy else 503)


@app.page("/email-stats")
class EmailStatisticsView(View):
    """Sent, failed and delivery rate per UTC day, newest first, as the daily job computed them."""

    async def get(self, request: Request) -> Response:
        try:
            async with sessions() as session:
                rows = await session.scalars(select(EmailStatistics).order_by(EmailStatistics.day.desc()).limit(90))
                days = [
                    {"day": row.day.isoformat(), "sent": row.sent, "failed": row.failed, "delivery_rate": row.delivery_rate}
                    for row in rows
                ]
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise ServiceUnavailable("the database cannot be reached; try again shortly") from exc
        return self.json({"days": days})


if settings.monitoring.enabled:
    worker_metrics = WorkerMetrics(state_engine)
    register_collector(
        app, group_reader, functools.partial(watched_topic_names, settings.topics), state_engine,
        (relay_group_id(settings.kafka.group_id), list(tier_topic_names(settings.topics, settings.retry))),
    )

    @app.page("/metrics")
    class MetricsView(View):
        """Prometheus metrics of this worker (also on a port of their own when monitoring.metrics_port is set)."""

        async def get(self, request: Request) -> Response:
            body = await asyncio.to_thread(generate_latest, worker_metrics)  # type: ignore[arg-type]
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    if (metrics_port := settings.monitoring.metrics_port) is not None:
        #: Once per process: Faust sends its worker-init signal more than once.
        serve_metrics = functools.cache(functools.partial(
            start_http_server, metrics_port, addr=settings.web.host, registry=worker_metrics,  # type: ignore[arg-type]
        ))

        @app.on_worker_init.connect  # type: ignore[arg-type]
        def on_worker_init(app: faust.App, **kwargs: object) -> None:
            serve_metrics()
