"""Answers from a cluster of workers, each holding only its own partitions of a table.

A question about one key goes to the worker that owns the key's partition (found with the same
murmur2 partitioner the producers use). A question about every key is answered from this
worker's partitions and from every other worker that holds some of the table's active
partitions (asked with ``scope=local``, so the question goes no further). The partition assignor
knows which workers those are and where their web views listen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable
from yarl import URL

from tables.access import forwarded_headers

LOCAL = "local"
TIMEOUT = aiohttp.ClientTimeout(total=10)


class WorkerUnreachableError(ServiceUnavailable):
    """Another worker holding part of the answer did not give it (503)."""


def asks_locally(request: Request) -> bool:
    return request.query.get("scope") == LOCAL


def same_worker(a: URL, b: URL) -> bool:
    return (a.host, a.port) == (b.host, b.port)


def partition_of(key: str, partitions: int) -> int:
    every = list(range(partitions))
    return DefaultPartitioner()(key.encode(), every, every)


def owner_of(app: faust.App, table: faust.types.CollectionT, key: str) -> URL | None:
    """The web view of the worker whose active partition holds ``key``; None while nobody holds it."""
    topic = table.changelog_topic.get_topic_name()
    partition = partition_of(key, table.partitions or app.conf.topic_partitions)
    for host, topics in app.router.table_metadata(table.name).items():
        if partition in topics.get(topic, ()):
            return URL(host)
    return None


async def answer_for_key(
    app: faust.App, table: faust.types.CollectionT, key: str, view: View, request: Request,
    local: Callable[[], Response],
) -> Response:
    """``local()`` when this worker owns ``key``, else the owner's answer to the same request."""
    owner = owner_of(app, table, key)
    if owner is None:
        if app.rebalancing or not app.router.table_metadata(table.name):
            raise ServiceUnavailable("the workers are being assigned their partitions; try again shortly")
        return local()
    if same_worker(owner, URL(str(app.conf.canonical_url))) or asks_locally(request):
        return local()
    url = owner.with_path(request.rel_url.path).with_query({**request.query, "scope": LOCAL})
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=forwarded_headers(request.headers)) as session, session.get(url) as response:
            return view.text(await response.text(), content_type=response.content_type, status=response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise WorkerUnreachableError(f"worker {url.host}:{url.port} did not answer: {exc or type(exc).__name__}") from exc


def other_workers(app: faust.App, table: faust.types.CollectionT | None = None) -> list[URL]:
    """The web views of the other workers that hold active partitions of ``table`` (of any table when None).

    State kept outside Faust's tables (the state engine's) is spread over the workers by a consumer
    group of its own, so a question about it goes to every worker.
    """
    own = URL(str(app.conf.canonical_url))
    hosts = app.router.tables_metadata() if table is None else app.router.table_metadata(table.name)
    return [URL(host) for host, topics in hosts.items() if any(topics.values()) and not same_worker(URL(host), own)]


async def gather(
    app: faust.App, request: Request, local: Callable[[], Any], table: faust.types.CollectionT | None = None,
) -> list[Any]:
    """This worker's part (``local()``) and the part of every other worker that holds ``table``'s partitions
    (every worker's, for state kept outside Faust's tables), as JSON values.

    A view answers a request that ``asks_locally`` with its own part alone.
    """
    parts = [local()]
    query = {**request.query, "scope": LOCAL}
    urls = [host.with_path(request.rel_url.path).with_query(query) for host in other_workers(app, table)]

    async def fetch(session: aiohttp.ClientSession, url: URL) -> Any:
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    raise WorkerUnreachableError(f"worker {url.host}:{url.port} answered {response.status}")
                return await response.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise WorkerUnreachableError(f"worker {url.host}:{url.port} did not answer: {exc or type(exc).__name__}") from exc

    if urls:
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=forwarded_headers(request.headers)) as session:
            parts.extend(await asyncio.gather(*(fetch(session, url) for url in urls)))
    return parts
