"""The tables' web view, served by the worker's own web server."""

from __future__ import annotations

from faust.web import Request, Response, View

from streams.app import app
from tables.signups import signup_partials, sum_partials


@app.page("/signups")
class SignupsView(View):
    """Total signups and signups per UTC day."""

    async def get(self, request: Request) -> Response:
        per_day = sum_partials(signup_partials.items())
        return self.json({"total": sum(per_day.values()), "per_day": per_day})
