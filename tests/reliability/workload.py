"""The workload every fault test sends, and the ledger it checks afterwards.

Signups (each one a user row, a profile, a welcome email and a count in the signups table) and
post views (counted in the engagement table), shuffled together. After the fault and the
recovery, the ledger compares what was sent with what the tables, the database and the SMTP
server hold: an event is processed when all its effects are there, lost when one is missing,
duplicated when an effect is there more than once.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from streams.db.engine import sync_engine
from streams.db.models import DeadLetter, EmailLog, ProcessedEvent, User, UserProfile
from streams.events import Event, PostViewed, UserCreated
from streams.producer import EventProducer
from streams.settings import Settings
from streams.worker_process import WorkerProcess
from tests.waiting import wait_until
from tests.smtp_inbox import Inbox

HANDLERS = ("users.create_user", "users.welcome_email")


@dataclass(frozen=True)
class Workload:
    users: int
    posts: int
    views_each: int
    seed: int = 7

    @property
    def size(self) -> int:
        return self.users + self.posts * self.views_each

    def events(self) -> list[Event]:
        signups: list[Event] = [
            UserCreated.new(user_id=f"u{n}", email=f"u{n}@example.com", username=f"user{n}") for n in range(self.users)
        ]
        views: list[Event] = [
            PostViewed.new(post_id=f"post{post}", user_id=f"u{n}") for n in range(self.views_each) for post in range(self.posts)
        ]
        mixed = signups + views
        random.Random(self.seed).shuffle(mixed)
        return mixed


@dataclass
class Ledger:
    """What came out of a workload, read from the worker's tables, the database and the inbox."""

    sent: int
    signups_counted: int = 0
    views: dict[str, int] = field(default_factory=dict)
    user_rows: int = 0
    profile_rows: int = 0
    handled: dict[str, int] = field(default_factory=dict)
    emails_logged: int = 0
    emails_received: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0

    def figures(self, workload: Workload) -> dict[str, int]:
        """sent / processed / lost / duplicated, in events; duplicate emails apart (SMTP is outside the database)."""
        views_lost = sum(max(0, workload.views_each - self.views.get(f"post{p}", 0)) for p in range(workload.posts))
        views_extra = sum(max(0, count - workload.views_each) for count in self.views.values())
        users_done = min(self.signups_counted, self.user_rows, self.profile_rows, self.emails_logged,
                         len(self.emails_received), *(self.handled.get(h, 0) for h in HANDLERS))
        users_lost = workload.users - min(users_done, workload.users)
        duplicated = (views_extra + max(0, self.signups_counted - workload.users) + max(0, self.user_rows - workload.users)
                      + max(0, self.emails_logged - workload.users))
        return {
            "sent": self.sent, "processed": workload.size - views_lost - users_lost, "lost": views_lost + users_lost,
            "duplicated": duplicated,
            "duplicate_emails": sum(self.emails_received.values()) - len(self.emails_received),
            "dead_letters": self.dead_letters,
        }


def views_of(worker: WorkerProcess, post_id: str) -> int:
    """A post's views as the cluster reports them; 0 for a post it has no record of (404)."""
    try:
        return worker.get(f"/posts/{post_id}/engagement").get("views", 0)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return 0
        raise


def read_ledger(workload: Workload, worker: WorkerProcess, database_url: str, inbox: Inbox) -> Ledger:
    ledger = Ledger(sent=workload.size)
    ledger.signups_counted = worker.get("/signups")["total"]
    ledger.views = {f"post{p}": views_of(worker, f"post{p}") for p in range(workload.posts)}
    engine = sync_engine(database_url)
    try:
        with Session(engine) as session:
            def count(model: type) -> int:
                return session.scalar(select(func.count()).select_from(model))

            ledger.user_rows, ledger.profile_rows = count(User), count(UserProfile)
            ledger.emails_logged = session.scalar(
                select(func.count()).select_from(EmailLog).where(EmailLog.status == "sent")
            )
            ledger.handled = dict(session.execute(
                select(ProcessedEvent.handler, func.count()).where(ProcessedEvent.handler.in_(HANDLERS))
                .group_by(ProcessedEvent.handler)
            ).all())
            ledger.dead_letters = count(DeadLetter)
    finally:
        engine.dispose()
    ledger.emails_received = inbox.recipients()
    return ledger


def wait_for_everything(
    workload: Workload, worker: WorkerProcess, database_url: str, inbox: Inbox, timeout: float,
    alive: Callable[[], bool] = lambda: True,
) -> Ledger:
    """Read the ledger until nothing is lost (or ``timeout``), then once more after a quiet spell, so late
    duplicates show too. A read the worker cannot answer yet (503 while partitions move) is read again."""
    deadline = time.monotonic() + timeout

    def answered() -> Ledger | None:
        try:
            return read_ledger(workload, worker, database_url, inbox)
        except OSError as error:
            print(f"{time.strftime('%H:%M:%S')} the worker did not answer: {error}", flush=True)
            return None

    while time.monotonic() < deadline:
        assert alive(), "a worker died; see its log"
        ledger = answered()
        if ledger is None:
            time.sleep(1.0)
            continue
        figures = ledger.figures(workload)
        print(f"{time.strftime('%H:%M:%S')} {figures}", flush=True)
        if figures["lost"] == 0:
            break
        time.sleep(1.0)
    time.sleep(3.0)
    return wait_until(answered, "the last reading of the ledger", timeout=60, alive=alive, interval=1.0)


def assert_nothing_lost_or_doubled(figures: dict[str, int], duplicate_emails_at_most: int = 0) -> None:
    """Every event sent processed once, none of them given up on, and welcome emails sent twice only as
    often as the fault allows: SMTP cannot take back an email whose handler's commit the fault stopped,
    one for each signup in flight when it struck."""
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["processed"] == figures["sent"], figures
    assert figures["dead_letters"] == 0, figures
    assert figures["duplicate_emails"] <= duplicate_emails_at_most, figures


def signups_in_flight() -> int:
    """Signups one worker handles at once: the most welcome emails one fault can leave sent but not committed."""
    return Settings().topics.in_flight["user"]


def users_handled(database_url: str) -> int:
    """Signups whose user row is written: the slowest of a signup's effects, so a fault lands mid-stream."""
    engine = sync_engine(database_url)
    try:
        with Session(engine) as session:
            return session.scalar(
                select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.handler == HANDLERS[0])
            )
    finally:
        engine.dispose()


def progress(worker: WorkerProcess) -> int:
    """Signups counted so far, as the worker's view reports them (0 while it cannot answer)."""
    try:
        return worker.get("/signups")["total"]
    except OSError:
        return 0


class SteadyPublisher(threading.Thread):
    """Publishes a workload at ``rate`` events/s from its own thread, as an upstream service would,
    through whatever happens to the broker meanwhile; ``join()`` then re-raises a delivery failure."""

    def __init__(self, settings: Settings, workload: Workload, rate: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.workload, self.rate = settings, workload, rate
        self.published = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with EventProducer(self.settings) as producer:
                started = time.monotonic()
                for event in self.workload.events():
                    producer.publish(event)
                    self.published += 1
                    ahead = self.published / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                producer.flush(timeout=120)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        assert not self.is_alive(), "the publisher did not finish"
        if self.error is not None:
            raise self.error
