"""Answers from a cluster of workers, each holding only its own partitions of the state engine's states.

A question about one key goes to the worker that holds the key's partition (the murmur2
partitioner every producer uses). A question about every key is answered from this worker's
partitions and from every other worker that holds some of the state's partitions (asked with
``scope=local``, so the question goes no further).

Which worker holds what is read from the state engine's consumer group at the broker: each
member names its web address in its client id. The answer is kept for a second; a worker that
has left the group is gone from it at once, and one that died once its session has expired, so
no request is routed to either after that. A forward that fails drops the kept answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from confluent_kafka import KafkaException
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from streams.kafka.lag import GroupReader
from streams.kafka.partitions import partition_of
from streams.state.engine import MEMBER_ADDRESS, State
from streams.state.remote import EngineClient
from tables.access import forwarded_headers

LOCAL = "local"
TIMEOUT = aiohttp.ClientTimeout(total=10)
#: How long the group's assignment, as read from the broker, is trusted.
HOLDERS_TTL_S = 1.0


class WorkerUnreachableError(ServiceUnavailable):
    """Another worker holding part of the answer did not give it (503)."""


def asks_locally(request: Request) -> bool:
    return request.query.get("scope") == LOCAL


def same_worker(a: URL, b: URL) -> bool:
    return (a.host, a.port) == (b.host, b.port)


def member_url(client_id: str) -> URL | None:
    """The web view a member of the engine's group names in its client id."""
    _, found, address = client_id.rpartition(MEMBER_ADDRESS)
    return URL(f"http://{address}") if found and address else None


class EngineRouter:
    """Which worker's web view holds each partition of the state engine's sources."""

    def __init__(self, engine: EngineClient, reader: Callable[[], GroupReader], own: URL) -> None:
        self.engine, self.reader, self.own = engine, reader, own
        self._holders: dict[tuple[str, int], URL] | None = None
        self._read_at = 0.0

    async def holders(self) -> dict[tuple[str, int], URL] | None:
        """(topic, partition) to the web view holding it; None while the group is rebalancing."""
        if self._holders is None or time.monotonic() - self._read_at > HOLDERS_TTL_S:
            try:
                assignments = await asyncio.to_thread(self.reader().assignments, self.engine.group_id)
            except KafkaException as exc:
                raise ServiceUnavailable(f"cannot read which worker holds what from the broker: {exc.args[0]}") from exc
            self._read_at = time.monotonic()
            self._holders = None if assignments is None else {
                partition: url
                for client_id, partitions in assignments.items() if (url := member_url(client_id)) is not None
                for partition in partitions
            }
        return self._holders

    def forget(self) -> None:
        self._holders = None

    async def owner(self, state: State[Any], key: str) -> URL | None:
        holders = await self.holders()
        return None if holders is None else holders.get((state.source, partition_of(key, self.engine.partition_count)))

    async def others(self, state: State[Any]) -> list[URL]:
        """The other workers holding partitions of ``state``."""
        holders = await self.holders()
        if holders is None:
            raise ServiceUnavailable("the workers are being assigned their partitions; try again shortly")
        urls = {url for (topic, _), url in holders.items() if topic == state.source and not same_worker(url, self.own)}
        return sorted(urls, key=str)


async def forward(router: EngineRouter, view: View, request: Request, owner: URL) -> Response:
    """The same request, asked of ``owner`` for its own answer."""
    url = owner.with_path(request.rel_url.path).with_query({**request.query, "scope": LOCAL})
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=forwarded_headers(request.headers)) as session, session.get(url) as response:
            return view.text(await response.text(), content_type=response.content_type, status=response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        router.forget()
        raise WorkerUnreachableError(f"worker {url.host}:{url.port} did not answer: {exc or type(exc).__name__}") from exc


async def answer_for_key(
    router: EngineRouter, state: State[Any], key: str, view: View, request: Request, local: Callable[[], Response],
) -> Response:
    """``local()`` when this worker holds ``key``'s partition, else the holder's answer to the same request."""
    if router.engine.holds(state, key):
        return local()
    owner = None if asks_locally(request) else await router.owner(state, key)
    if owner is None or same_worker(owner, router.own):
        raise ServiceUnavailable("the partition holding this key is being assigned or restored; try again shortly")
    return await forward(router, view, request, owner)


def held_part(partitions: list[int], part: Any) -> dict[str, Any]:
    """A worker's part of an answer about every key, and the partitions it was read from."""
    return {"partitions": partitions, "part": part}


async def gather(
    router: EngineRouter, state: State[Any], request: Request, local: Callable[[], dict[str, Any]],
) -> list[Any]:
    """The parts of an answer about every key of ``state``: this worker's (``local()``, a ``held_part``) and every
    other worker's that holds partitions of it, asked with ``scope=local``. They must cover every partition once:
    while partitions move or are restored they may not, and the answer is 503 rather than a partial sum."""
    held = [local()]
    query = {**request.query, "scope": LOCAL}
    urls = [host.with_path(request.rel_url.path).with_query(query) for host in await router.others(state)]

    async def fetch(session: aiohttp.ClientSession, url: URL) -> Any:
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    raise WorkerUnreachableError(f"worker {url.host}:{url.port} answered {response.status}")
                return await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            router.forget()
            raise WorkerUnreachableError(f"worker {url.host}:{url.port} did not answer: {exc or type(exc).__name__}") from exc

    if urls:
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=forwarded_headers(request.headers)) as session:
            held.extend(await asyncio.gather(*(fetch(session, url) for url in urls)))
    covered = sorted(partition for part in held for partition in part["partitions"])
    if covered != list(range(router.engine.partition_count)):
        router.forget()
        raise ServiceUnavailable("partitions are being moved or restored; try again shortly")
    return [part["part"] for part in held]
