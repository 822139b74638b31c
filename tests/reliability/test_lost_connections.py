"""A connection to the broker lost during a coordinator lookup: a transactional producer carries on.

The broker here is reached through a forwarder that cuts the connection as a FindCoordinator
request goes out, which is what a worker meets when the broker stops in the middle of an offset
commit under exactly-once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.producer.sender import Sender

from streams.coordinator_lookup import aiokafka_find_coordinator, retry_coordinator_lookups
from streams.devkafka import LocalBroker
from tests.conftest import JARS_CACHE, free_port
from tests.cutting_proxy import FIND_COORDINATOR, CuttingProxy

pytestmark = [pytest.mark.kafka, pytest.mark.reliability, pytest.mark.timeout(300)]

COMMITTED_OFFSET = 42


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CuttingProxy]:
    """A broker whose clients all reach it through a cutting proxy."""
    port = free_port()
    with CuttingProxy(port) as proxy:
        broker = LocalBroker(
            tmp_path_factory.mktemp("proxied-kafka"), port=port, controller_port=free_port(), jars_cache=JARS_CACHE,
            advertised_port=proxy.port,
        )
        try:
            broker.start()
            yield proxy
        finally:
            broker.stop()


@pytest.fixture
def mended(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's mend, installed for one test and taken away after it."""
    monkeypatch.setattr(Sender, "_find_coordinator", aiokafka_find_coordinator)
    retry_coordinator_lookups()


@pytest.fixture
def unmended(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiokafka's own lookup, even when an earlier test has imported the app (which installs the mend)."""
    monkeypatch.setattr(Sender, "_find_coordinator", aiokafka_find_coordinator)


def transactional_producer(proxy: CuttingProxy, name: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=f"{proxy.host}:{proxy.port}", transactional_id=name, retry_backoff_ms=100,
        request_timeout_ms=10_000,
    )


async def commit_with_offsets(proxy: CuttingProxy, topic: str, group: str) -> None:
    """One transaction with a record and an offset to commit (on the same topic, which exists by then);
    each coordinator lookup loses its connection once."""
    proxy.cut_next(FIND_COORDINATOR)
    producer = transactional_producer(proxy, f"{group}-producer")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed", partition=0)
            proxy.cut_next(FIND_COORDINATOR)
            await producer.send_offsets_to_transaction({TopicPartition(topic, 0): COMMITTED_OFFSET}, group)
    finally:
        await producer.stop()


async def committed_state(proxy: CuttingProxy, topic: str, group: str) -> tuple[list[bytes], int | None]:
    """What a read-committed consumer sees in ``topic``, and the offset ``group`` has committed there."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=f"{proxy.host}:{proxy.port}", group_id=group, isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        batches = await consumer.getmany(partition, timeout_ms=10_000)
        return [record.value for record in batches.get(partition, [])], await consumer.committed(partition)
    finally:
        await consumer.stop()


def test_a_transaction_commits_through_connections_lost_in_coordinator_lookups(proxy: CuttingProxy, mended: None) -> None:
    cut_before = proxy.cut[FIND_COORDINATOR]
    asyncio.run(commit_with_offsets(proxy, "lost-connections-mended", "mended"))
    assert proxy.cut[FIND_COORDINATOR] - cut_before == 2, "both lookups (transaction and group coordinator) lost their connection"
    values, offset = asyncio.run(committed_state(proxy, "lost-connections-mended", "mended"))
    assert values == [b"committed"]
    assert offset == COMMITTED_OFFSET


def test_without_the_mend_aiokafka_gives_up_on_the_first_lost_lookup(proxy: CuttingProxy, unmended: None) -> None:
    """Why the worker installs the mend: this fails once aiokafka retries lost connections itself."""
    async def start() -> None:
        proxy.cut_next(FIND_COORDINATOR)
        producer = transactional_producer(proxy, "unmended-producer")
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaError, match="KafkaConnectionError"):
        asyncio.run(start())
