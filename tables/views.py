"""The worker's web view: the tables, the daily email statistics and the Prometheus metrics."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select

from streams.app import app, sessions
from streams.db.models import EmailStatistics
from tables.signups import signup_partials, sum_partials


@app.page("/signups")
class SignupsView(View):
    """Total signups and signups per UTC day."""

    async def get(self, request: Request) -> Response:
        per_day = sum_partials(signup_partials.items())
        return self.json({"total": sum(per_day.values()), "per_day": per_day})


@app.page("/email-stats")
class EmailStatisticsView(View):
    """Sent, failed and delivery rate per UTC day, newest first, as the daily job computed them."""

    async def get(self, request: Request) -> Response:
        async with sessions() as session:
            rows = await session.scalars(select(EmailStatistics).order_by(EmailStatistics.day.desc()).limit(90))
            days = [
                {"day": row.day.isoformat(), "sent": row.sent, "failed": row.failed, "delivery_rate": row.delivery_rate}
                for row in rows
            ]
        return self.json({"days": days})


@app.page("/metrics")
class MetricsView(View):
    """Prometheus metrics of this worker."""

    async def get(self, request: Request) -> Response:
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
