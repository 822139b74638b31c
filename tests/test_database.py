"""Models and migrations, on SQLite and on PostgreSQL."""

import asyncio
import uuid
from datetime import datetime, timezone

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from streams.db import migrate
from streams.db.engine import async_engine, session_factory, sync_engine
from streams.db.outage import OutageGate, is_outage
from streams.db.models import Base, DeadLetter, ProcessedEvent, User, UserProfile
from streams.dead_letters import store
from streams.services.search import index_document, is_search_table, search
from tests.conftest import free_port
from tests.databases import PostgresServer

TABLES = {
    "users", "followers", "user_profiles", "posts", "tags", "post_tags",
    "notifications", "email_log", "data_exports", "processed_events", "dead_letters", "email_statistics",
}


def test_migrations_create_every_table_and_downgrade_removes_them(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = sync_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    assert {name for name in tables if not is_search_table(name)} == TABLES | {"alembic_version"}
    assert {"search_index", "search_documents"} & tables
    migrate.downgrade(database_url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = sync_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, type_, parents: not (type_ == "table" and is_search_table(name))}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_a_processed_event_id_can_be_recorded_only_once(database_url: str) -> None:
    migrate.upgrade(database_url)
    event_id = str(uuid.uuid4())

    async def scenario() -> int:
        engine = async_engine(database_url)
        sessions = session_factory(engine)
        try:
            async with sessions.begin() as session:
                session.add(User(id="u1", email="u1@example.com", username="u1"))
                session.add(UserProfile(user_id="u1", bio="Welcome to our platform!"))
                session.add(ProcessedEvent(event_id=event_id, handler="users.create_user", event_type="UserCreated"))
            with pytest.raises(IntegrityError):
                async with sessions.begin() as session:
                    session.add(ProcessedEvent(event_id=event_id, handler="users.create_user", event_type="UserCreated"))
            async with sessions() as session:
                return len((await session.scalars(select(ProcessedEvent))).all())
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == 1


def dead_letter(offset: int) -> DeadLetter:
    return DeadLetter(
        topic="dead-letters", partition=0, offset=offset, origin_topic="emails", origin_partition=1, origin_offset=offset,
        target_agent="emails", event_id=None, event_type=None, key=b"k", payload=bytes([offset]), headers={"attempts": "3"},
        error_type="SmtpUnavailableError", error_message="refused", traceback="Traceback", attempts=3,
        failed_at=datetime.now(timezone.utc), replay_count=0,
    )


def test_a_dead_letter_record_delivered_again_is_stored_once(database_url: str) -> None:
    migrate.upgrade(database_url)

    async def scenario() -> tuple[list[DeadLetter], list[DeadLetter], list[tuple[int, bytes]]]:
        engine = async_engine(database_url)
        sessions = session_factory(engine)
        try:
            first = await store(sessions, [dead_letter(1), dead_letter(2)])
            again = await store(sessions, [dead_letter(2), dead_letter(3), dead_letter(4)])
            async with sessions() as session:
                rows = (await session.execute(select(DeadLetter.offset, DeadLetter.payload).order_by(DeadLetter.offset))).all()
            return first, again, [tuple(row) for row in rows]
        finally:
            await engine.dispose()

    first, again, rows = asyncio.run(scenario())
    assert [row.offset for row in first] == [1, 2] and [row.offset for row in again] == [3, 4]
    assert len({row.id for row in first + again}) == 4
    assert rows == [(1, b"\x01"), (2, b"\x02"), (3, b"\x03"), (4, b"\x04")]


def test_foreign_keys_are_enforced_on_both_backends(database_url: str) -> None:
    migrate.upgrade(database_url)

    async def scenario() -> None:
        engine = async_engine(database_url)
        try:
            with pytest.raises(IntegrityError):
                async with session_factory(engine).begin() as session:
                    session.add(UserProfile(user_id="nobody", bio="orphan"))
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_search_finds_users_and_posts_by_their_words(database_url: str) -> None:
    migrate.upgrade(database_url)

    async def scenario() -> tuple[list, list, list, list]:
        engine = async_engine(database_url)
        try:
            async with session_factory(engine).begin() as session:
                await index_document(session, "user", "ada", "ada Ada Lovelace Analytical engines and poetry")
                await index_document(session, "post", "p1", "Streaming events with Kafka is fun #kafka")
                await index_document(session, "post", "p2", "Gardening notes: tomatoes")
                await index_document(session, "post", "p1", "Streaming events with Kafka and Faust")
            async with session_factory(engine)() as session:
                return (
                    await search(session, "kafka"),
                    await search(session, "stream", kind="post"),
                    await search(session, "lovelace", kind="user"),
                    await search(session, 'fun" OR *'),
                )
        finally:
            await engine.dispose()

    kafka, stemmed, person, hostile = asyncio.run(scenario())
    assert [(hit.kind, hit.entity_id) for hit in kafka] == [("post", "p1")]
    assert [hit.entity_id for hit in stemmed] == ["p1"]
    assert [(hit.kind, hit.entity_id) for hit in person] == [("user", "ada")]
    assert hostile == []


def test_a_server_shutting_down_is_an_outage_to_wait_out_not_an_error_of_the_event() -> None:
    """While PostgreSQL shuts down it refuses new connections (SQLSTATE 57P03); the agents' driver reports that
    as a plain DBAPI error, which must still count as an outage, so the probe keeps waiting instead of raising."""
    with PostgresServer(free_port()) as server:
        url = server.new_database()
        engine = async_engine(url)
        gate = OutageGate(engine)
        with psycopg.connect(url) as held:
            server.pg("pg_ctl", "-D", str(server.data / "db"), "-m", "smart", "-W", "stop")

            async def refused() -> BaseException:
                try:
                    async with engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
                except Exception as exc:
                    return exc
                raise AssertionError("a server shutting down took a new connection")

            error = asyncio.run(refused())
            assert getattr(getattr(error, "orig", None), "sqlstate", None) == "57P03", repr(error)
            assert is_outage(error)
            assert asyncio.run(gate.answers()) is False
            held.close()
        server.halt()
        server.resume()
        assert asyncio.run(gate.answers()) is True
        asyncio.run(engine.dispose())


def test_a_pooled_connection_the_server_closed_is_replaced_before_a_transaction_meets_it(
    postgres_server: PostgresServer,
) -> None:
    """Connections are not pinged as they leave the pool; one whose server hung up is replaced there all the same."""
    url = postgres_server.new_database()

    async def backends_before_and_after_a_hang_up() -> tuple[int, int]:
        engine = async_engine(url, connections=1)
        try:
            async with engine.connect() as connection:
                before = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                pooled = (await connection.get_raw_connection()).driver_connection
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (before,))
            for _ in range(250):
                if pooled.is_closed():
                    break
                await asyncio.sleep(0.02)
            assert pooled.is_closed(), "the driver never saw the server hang up"
            async with engine.connect() as connection:
                after = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            return before, after
        finally:
            await engine.dispose()

    before, after = asyncio.run(backends_before_and_after_a_hang_up())
    assert after != before
