"""An optional token in front of the web view, for when it must listen beyond localhost.

Requests carry it as ``Authorization: Bearer <token>`` or ``?token=``; /health stays open for
load balancers and orchestrators, and says nothing secret. Workers forward the caller's token
when they route a request to the worker that owns a key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

OPEN_PATHS = frozenset({"/health"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def supplied_token(request: web.Request) -> str:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials if scheme.lower() == "bearer" else request.query.get("token", "")


def token_required(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """aiohttp middleware that answers 401 unless the request carries ``token``."""

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or hmac.compare_digest(supplied_token(request).encode(), token.encode()):
            return await handler(request)
        return web.json_response(
            {"error": "this view needs its token: send 'Authorization: Bearer <token>' or add ?token=<token>"},
            status=401,
        )

    return check_token


def bearer(token: str | None) -> dict[str, str]:
    """The header a client sends the token in; none without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's credentials, from a request's ``headers``, for the request routed on to another worker."""
    return {"Authorization": headers["Authorization"]} if "Authorization" in headers else {}
