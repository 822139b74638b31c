"""``streams dlt``: list, show, replay and purge the dead letters stored in the database."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import cast

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from streams.dead_letters import DeadLetterQuery, find, mark_replayed, purge, replay_headers
from streams.db.engine import sync_engine
from streams.db.models import DeadLetter
from streams.errors import DatabaseUnavailableError
from streams.settings import Settings, load_settings


def utc_time(text: str) -> datetime:
    """An ISO date or time; one without a zone is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def query_from(args: argparse.Namespace) -> DeadLetterQuery:
    return DeadLetterQuery(
        ids=tuple(args.ids or ()), topic=args.topic, event_type=args.type, error=args.error,
        since=args.since, until=args.until,
    )


def with_session(work: Callable[[Session, argparse.Namespace, Settings], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command in one transaction on the configured database."""

    def run(args: argparse.Namespace) -> int:
        settings = load_settings()
        engine = sync_engine(settings.database.url)
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session, args, settings)
        except SQLAlchemyError as exc:
            first_line = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise DatabaseUnavailableError(f"cannot use the dead letters in {engine.url!r}: {first_line}") from None
        finally:
            engine.dispose()

    return run


def summary(row: DeadLetter) -> str:
    replayed = f" replayed={row.replay_count}" if row.replay_count else ""
    return (
        f"{row.id:>6}  {row.failed_at:%Y-%m-%d %H:%M:%S}  {row.origin_topic or '-'}  {row.event_type or 'undecodable'}  "
        f"{row.error_type}  attempts={row.attempts}{replayed}  {row.error_message[:80]}"
    )


def list_letters(session: Session, args: argparse.Namespace, settings: Settings) -> int:
    rows = find(session, query_from(args))
    for row in rows[: args.limit]:
        print(summary(row))
    print(f"{len(rows)} dead letter(s)" + (f", first {args.limit} shown" if len(rows) > args.limit else ""))
    return 0


def show_letter(session: Session, args: argparse.Namespace, settings: Settings) -> int:
    row = session.get(DeadLetter, args.id)
    if row is None:
        print(f"no dead letter {args.id}")
        return 1
    from streams.codec import build_codec

    event = build_codec(settings.schema_registry.url).decode(row.payload)
    details = {
        "id": row.id, "event_id": row.event_id, "event_type": row.event_type,
        "origin": {"topic": row.origin_topic, "partition": row.origin_partition, "offset": row.origin_offset},
        "dead_letter": {"topic": row.topic, "partition": row.partition, "offset": row.offset},
        "agent": row.target_agent, "attempts": row.attempts, "failed_at": row.failed_at.isoformat(),
        "error": {"type": row.error_type, "message": row.error_message},
        "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None, "replay_count": row.replay_count,
        "key": row.key.decode("utf-8", "replace") if row.key is not None else None,
        "event": repr(event), "headers": row.headers,
    }
    print(json.dumps(details, indent=2))
    print(row.traceback or "(no traceback)")
    return 0


def require_selection(args: argparse.Namespace) -> DeadLetterQuery:
    query = query_from(args)
    if query.is_empty() and not args.all:
        raise SystemExit("streams: name dead letters by id or filter, or pass --all")
    return query


def replay_letters(session: Session, args: argparse.Namespace, settings: Settings) -> int:
    from streams.producer import EventProducer

    rows = [row for row in find(session, require_selection(args)) if row.origin_topic]
    for row in rows:
        print(("would replay " if args.dry_run else "replaying ") + summary(row))
    if args.dry_run or not rows:
        print(f"{len(rows)} dead letter(s) {'to replay' if args.dry_run else 'replayed'}")
        return 0
    with EventProducer(settings) as producer:
        for row in rows:
            producer.send_raw(cast(str, row.origin_topic), row.key, row.payload, replay_headers(row), row.origin_partition)
    mark_replayed(rows)
    print(f"{len(rows)} dead letter(s) replayed")
    return 0


def purge_letters(session: Session, args: argparse.Namespace, settings: Settings) -> int:
    print(f"{purge(session, require_selection(args))} dead letter(s) purged")
    return 0


def add_dlt_commands(commands: argparse._SubParsersAction) -> None:
    dlt = commands.add_parser("dlt", help="dead letters: list, show, replay, purge").add_subparsers(
        dest="action", required=True
    )

    def with_filters(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--topic", help="origin topic")
        command.add_argument("--type", help="event type, e.g. EmailNotification")
        command.add_argument("--error", help="text in the error type or message")
        command.add_argument("--since", type=utc_time, help="failed at or after (ISO time, UTC unless given)")
        command.add_argument("--until", type=utc_time, help="failed before (ISO time)")
        return command

    listing = with_filters(dlt.add_parser("list", help="dead letters, oldest first"))
    listing.add_argument("--limit", type=int, default=100, help="rows to print (default 100)")
    listing.set_defaults(run=with_session(list_letters), ids=())
    show = dlt.add_parser("show", help="one dead letter: headers, event, traceback")
    show.add_argument("id", type=int)
    show.set_defaults(run=with_session(show_letter))
    for action, work, text in (
        ("replay", replay_letters, "send dead letters back to their origin topic"),
        ("purge", purge_letters, "delete dead letters"),
    ):
        command = with_filters(dlt.add_parser(action, help=text))
        command.add_argument("ids", nargs="*", type=int, metavar="ID")
        command.add_argument("--all", action="store_true", help="every dead letter that matches (default: none)")
        if action == "replay":
            command.add_argument("--dry-run", action="store_true", help="print what would be replayed, send nothing")
        command.set_defaults(run=with_session(work))
