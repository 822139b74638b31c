"""Retries on the real local broker: how late the relay delivers, and what failing events cost healthy ones.

1. Lateness: 10,000 delayed events (5 to 15 s) are pending in the delay tiers at once; the relay
   sends each back to its topic when due. Lateness is the time it was sent minus its due time
   (and the time a consumer received it minus its due time).
2. Healthy throughput: a worker sends newsletter emails from one partition to a real SMTP
   server in phases of N emails: with nothing failing, or with 1,000 events for users that do
   not exist interleaved on the same partition (each tried 3 times over 3 s, then
   dead-lettered). The phases take turns in one worker (clean then failing, then failing then
   clean, and so on), after a warm-up, so what makes one fresh worker process faster than the
   next does not weigh on the ratio. Within a turn each kind's phase is cut into ``--slices``
   slices of about half a minute that alternate, so drift in the machine's speed over minutes
   hits both kinds alike. A slice's rate is its healthy emails over the time from its first
   delivery to its last; a kind's rate is its slices' together. In a slice with failing events
   they come among all but the last few seconds' healthy emails, so that their retries and dead
   letters run before its last delivery, and it ends, before the next begins, when all of them
   are dead letters. The events are published as the
   worker goes, at most WINDOW healthy ones ahead of it: a retried event goes back to the end of
   its partition, so behind a backlog published up front it would wait for all of it, and the
   healthy emails would be done before most failing events were tried a second time. Each
   attempt of a failing event costs handler work, so the ratio depends on how many healthy
   emails share the partition with the 1,000 failing events; ``--emails`` takes several counts.
   The ratio is the median of the turns' ratios: each compares two phases run back to back.
   Each phase also reads the CPU time of the worker's event-loop thread from /proc: per healthy
   email, and what the failing events add against the clean phase of its turn.
   With ``--worker-cpu`` the worker has that CPU to itself: the broker, the database, the SMTP
   server and the feeders run on the others, as they would on other machines in a deployment.
   Sharing it, the broker's extra work for the failing events (their transactions, the relay's
   traffic) took the worker's CPU and caches, and the cost the benchmark charged to failing
   events moved from run to run with what else ran there.
3. Retry lateness in a worker: how late each failing event's next attempt ran after its due
   time, from the worker's log (commit of the retry's transaction, the relay, the fetch).

    .venv/bin/python -m bench.retries --delayed 10000 --emails 20000 --failing 1000 --repeat 5 [--slices 4]
        [--worker-cpu 1] [--postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from confluent_kafka import Consumer

from bench.procfs import cpu_seconds, cpu_ticks
from bench.workers import (
    BenchDatabases, bench_databases, bench_worker, cpu_of_this_machine, other_cpus, scratch_broker, this_process_on,
)
from streams import metrics
from streams.admin import ensure_topics
from streams.cli_types import non_negative_int, positive_int
from streams.db.engine import sync_engine
from streams.events import EmailNotification, PostViewed
from streams.producer import EventProducer
from streams.relay import Relay
from streams.retry import DUE_AT, RetryPolicy, read_headers
from streams.settings import Settings
from streams.topics import retry_topic_configs, tier_topic_names
from tests.conftest import Namespace, free_port
from tests.databases import seed_users
from tests.smtp_inbox import SmtpServer

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class RelayRun:
    """A relay running in a thread of its own; ``cpu_s`` is that thread's CPU time once it has stopped."""

    thread: threading.Thread
    stop: threading.Event
    cpu_s: float = 0.0

    def join(self, timeout: float) -> None:
        self.stop.set()
        self.thread.join(timeout)


def run_relay(settings: Settings) -> RelayRun:
    """A relay in a thread of its own, returned once it owns the tiers' partitions."""
    ready = threading.Event()

    async def relay() -> None:
        tiers = tier_topic_names(settings.topics, settings.retry)
        instance = Relay(settings.kafka, tiers, settings.topics.dead_letters)
        await instance.start()
        task = asyncio.create_task(instance.run())
        while not instance.consumer.assignment():
            await asyncio.sleep(0.1)
        started = time.thread_time()
        ready.set()
        while not run.stop.is_set():
            await asyncio.sleep(0.2)
        run.cpu_s = time.thread_time() - started
        task.cancel()
        await instance.stop()

    run = RelayRun(threading.Thread(target=asyncio.run, args=(relay(),), daemon=True), threading.Event())
    run.thread.start()
    if not ready.wait(60):
        raise SystemExit("the relay was not assigned its partitions within 60 s")
    return run


def relayed_so_far() -> float:
    """Events relayed in this process, every destination together (the relay's own counter)."""
    return sum(sample.value for metric in metrics.EVENTS_RELAYED.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


def lateness(bootstrap: str, count: int) -> dict[str, float]:
    """Milliseconds late, sent and received, for ``count`` events pending at once; and the relay thread's CPU
    per pass (an event goes through one delay tier per pass, so a long delay takes more than one)."""
    settings = Namespace(f"late{uuid.uuid4().hex[:8]}", bootstrap).settings()
    topics = {**retry_topic_configs(settings.topics, settings.retry), settings.topics.post_events: {}}
    ensure_topics(settings.kafka, topics, 4, 1)
    relayed_before = relayed_so_far()
    relay = run_relay(settings)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{settings.kafka.group_id}-reader",
                        "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10})
    consumer.subscribe([settings.topics.post_events])
    rng = random.Random(5)
    with EventProducer(settings) as producer:
        for n in range(count):
            producer.publish(PostViewed.new(post_id=f"p{n}", user_id=f"u{n}"), delay=rng.uniform(5, 15))
    sent, received = [], []
    deadline = time.monotonic() + 120
    try:
        while len(sent) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.01):
                if message.error() is None:
                    now_ms = time.time() * 1000
                    due = int(read_headers(message.headers())[DUE_AT])
                    sent.append(message.timestamp()[1] - due)
                    received.append(now_ms - due)
    finally:
        consumer.close()
        relay.join(30)
    if len(sent) < count:
        raise SystemExit(f"only {len(sent)} of {count} delayed events arrived")
    passes = relayed_so_far() - relayed_before
    return {
        "sent_p50_ms": percentile(sent, 0.5), "sent_p99_ms": percentile(sent, 0.99), "sent_min_ms": min(sent),
        "received_p50_ms": percentile(received, 0.5), "received_p99_ms": percentile(received, 0.99),
        "relay_passes_per_event": passes / count, "relay_cpu_ms_per_pass": relay.cpu_s * 1000 / passes,
    }


#: The worker's log line for a failed attempt (streams.agent_loop): its time, event id and next step.
ATTEMPT_LINE = re.compile(
    r"^\[(?P<time>[\d-]+ [\d:]+,\d{3})\] \[\d+\] \[\w+\] "
    r"(?:retrying event id=(?P<retried>\S+) .* in (?P<delay>[\d.]+)s \(attempt|dead-lettered event id=(?P<dead>\S+) )"
)


@dataclass(frozen=True)
class RetriedAttempt:
    """A retried attempt that failed again, from the worker's log: when (epoch s), and how late after its due time.

    Beyond the relay's lateness this counts the wait for the transaction that holds the retry to
    commit (nothing is visible to the relay before that), the events queued ahead of the retried
    one in its partition, and the worker's fetch of it.
    """

    at: float
    late_ms: float


def retried_attempts(log: Path) -> list[RetriedAttempt]:
    due: dict[str, float] = {}
    attempts = []
    for line in log.read_text().splitlines():
        found = ATTEMPT_LINE.match(line)
        if found is None:
            continue
        at = datetime.strptime(found["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        event_id = found["retried"] or found["dead"]
        if event_id in due:
            attempts.append(RetriedAttempt(at, (at - due.pop(event_id)) * 1000))
        if found["retried"]:
            due[event_id] = at + float(found["delay"])
    return attempts


#: Healthy emails the feeder keeps published ahead of the deliveries: enough that the worker never
#: waits for work, few enough that a retried event does not queue behind a long backlog.
WINDOW = 100


def feed(settings: Settings, events: list[tuple[EmailNotification, bool]], delivered: Callable[[], int],
         stop: threading.Event) -> None:
    """Publish ``events`` (each with whether it is healthy) in order, at most WINDOW healthy ones ahead."""
    healthy = 0
    with EventProducer(settings) as producer:
        for event, is_healthy in events:
            while healthy - delivered() >= WINDOW:
                if stop.is_set():
                    return
                producer.flush()
                time.sleep(0.01)
            producer.publish(event)
            healthy += is_healthy


def newsletters(users: list[str], failing: int, tail: int = 0) -> list[tuple[EmailNotification, bool]]:
    """A newsletter email to each of ``users``, with ``failing`` emails for users that do not exist spread evenly
    among all but the last ``tail`` of them (each after a healthy one), so that every attempt of every failing event
    runs before the last healthy email; each with whether it is healthy."""
    spread = max(failing, len(users) - tail)
    every = spread // failing if failing else len(users) + 1
    events = []
    for n, user in enumerate(users):
        events.append((EmailNotification.new(user_id=user, template="newsletter", data={"title": "News", "body": "Hi"}), True))
        if failing and n % every == 0 and n // every < failing:
            ghost = EmailNotification.new(user_id=f"ghost-{uuid.uuid4().hex[:12]}", template="newsletter",
                                          data={"title": "x", "body": "y"})
            events.append((ghost, False))
    return events


@dataclass(frozen=True)
class Phase:
    """One stretch of a worker's run, from its first delivery to its last: the intervals between its healthy
    deliveries and the seconds they span; the retried attempts that ran meanwhile; the worker's CPU seconds from
    the moment its events began to be published to the last delivery (in all, and its event loop's thread) and
    the seconds between those two moments; the pauses between deliveries (``pauses``); and how busy the other
    CPUs were meanwhile (broker, database, SMTP server, feeders), when the worker has one to itself."""

    intervals: int
    span_s: float
    retried: list[RetriedAttempt]
    cpu_s: float
    loop_cpu_s: float
    elapsed_s: float
    pauses: dict[str, float]
    others_busy: float | None

    @property
    def rate(self) -> float:
        """Healthy emails per second."""
        return self.intervals / self.span_s

    @classmethod
    def joined(cls, slices: list[Phase]) -> Phase:
        """Slices of one kind taken as one phase: their deliveries over their summed spans, the time between slices
        left out."""
        busy = [(part.others_busy, part.elapsed_s) for part in slices if part.others_busy is not None]
        gaps = [part.pauses for part in slices]
        return cls(
            sum(part.intervals for part in slices), sum(part.span_s for part in slices),
            [attempt for part in slices for attempt in part.retried],
            sum(part.cpu_s for part in slices), sum(part.loop_cpu_s for part in slices),
            sum(part.elapsed_s for part in slices),
            {"longest_s": max(gap["longest_s"] for gap in gaps), "paused_s": sum(gap["paused_s"] for gap in gaps),
             "pauses": sum(gap["pauses"] for gap in gaps)},
            sum(share * seconds for share, seconds in busy) / sum(seconds for _, seconds in busy) if busy else None,
        )


class MailBench:
    """A worker sending newsletter emails from one partition to a real SMTP server, fed in phases.

    The phases of one worker share its process, its database and its broker, so what differs from
    one fresh worker to the next (hash seeds, memory layout, a database file grown elsewhere on
    disk) weighs on every phase alike: on this machine it moves the rate of a fresh worker by 10%
    or more, as much as the failing events do. A phase with failing events ends once every one of
    them is a dead letter, so none of their attempts runs in the next phase.
    """

    def __init__(
        self, bootstrap: str, home: Path, emails: int, databases: BenchDatabases, env: Mapping[str, str],
        apart: frozenset[int] | None = None,
    ) -> None:
        """``apart``: the CPUs this process (the SMTP server, the feeders) keeps to while the worker runs."""
        self.apart = apart
        self.namespace = Namespace(f"mail{uuid.uuid4().hex[:8]}", bootstrap)
        self.settings = self.namespace.settings()
        self.users = [f"u{n}" for n in range(emails)]
        self.database_url = databases.new(home, self.namespace.prefix)
        self.home, self.env = home, env
        self.dead_letters = 0

    def __enter__(self) -> MailBench:
        """Seed the users and start the SMTP server and the worker; what started is stopped if a later step fails."""
        seed_users(self.database_url, *self.users)
        ensure_topics(self.settings.kafka, {self.settings.topics.email_events: {}}, 1, 1)
        with ExitStack() as started:
            self.smtp = started.enter_context(SmtpServer(free_port()))
            self.database = sync_engine(self.database_url)
            started.callback(self.database.dispose)
            self.worker = bench_worker(
                {**self.namespace.env, "STREAMS_TOPICS__PARTITIONS": "1", "STREAMS_SMTP__PORT": str(self.smtp.port),
                 **self.env},
                self.home, self.namespace.prefix, self.database_url,
            )
            self.worker.start()
            started.callback(self.worker.stop)
            started.enter_context(this_process_on(self.apart))
            self.started = started.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self.started.close()

    def phase(self, failing: int, emails: int | None = None, tail: int = 0) -> Phase:
        """Send ``emails`` (every user's by default) with ``failing`` bad events among all but the last ``tail``."""
        users = self.users[:emails]
        inbox, pid = self.smtp.inbox, self.worker.process.pid
        before = len(inbox.messages)
        cpu_before, loop_before = cpu_seconds(pid), cpu_seconds(pid, pid)
        apart = self.apart
        others_before = cpu_ticks(apart) if apart else None
        started = time.monotonic()
        stop = threading.Event()
        feeder = threading.Thread(
            target=feed, args=(self.settings, newsletters(users, failing, tail), lambda: len(inbox.messages) - before, stop),
        )
        feeder.start()
        try:
            deadline = time.monotonic() + 600
            while len(inbox.messages) - before < len(users) and time.monotonic() < deadline:
                time.sleep(0.2)
            cpu, loop_cpu = cpu_seconds(pid) - cpu_before, cpu_seconds(pid, pid) - loop_before
            elapsed = time.monotonic() - started
            others = busy_share(others_before, cpu_ticks(apart)) if apart and others_before else None
        finally:
            stop.set()
            feeder.join(60)
        times = sorted(attempt for tries in inbox.attempts.values() for attempt in tries)[before:before + len(users)]
        if len(times) < len(users):
            raise SystemExit(f"only {len(times)} of {len(users)} emails arrived; see {self.worker.log_file}")
        self.dead_letters += failing
        self.wait_for_dead_letters()
        retried = [attempt for attempt in retried_attempts(self.worker.log_file) if times[0] <= attempt.at <= times[-1]]
        return Phase(len(times) - 1, times[-1] - times[0], retried, cpu, loop_cpu, elapsed, pauses(times), others)

    def wait_for_dead_letters(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while (stored := self.stored_dead_letters()) < self.dead_letters:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {stored} of {self.dead_letters} dead letters stored; see {self.worker.log_file}")
            time.sleep(0.2)

    def stored_dead_letters(self) -> int:
        with self.database.connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the ticks between two ``cpu_ticks`` readings that were busy."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


#: A delivery this long after the one before it counts as a pause: at 80 emails/s, 40 missed in a row.
PAUSE_S = 0.5


def pauses(times: list[float]) -> dict[str, float]:
    """The longest gap between two deliveries, and the seconds spent in gaps of ``PAUSE_S`` or more: a run slowed
    by stalls (a rebalance, a commit waited on) shows there, one slowed evenly (CPU taken) does not."""
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    long = [gap for gap in gaps if gap >= PAUSE_S]
    return {"longest_s": max(gaps, default=0.0), "paused_s": sum(long), "pauses": len(long)}


def healthy_throughput(
    bootstrap: str, home: Path, emails: int, failing: int, databases: BenchDatabases, env: Mapping[str, str] = {},
) -> Phase:
    """Healthy emails per second from a fresh worker, first delivery to last, with ``failing`` bad events among
    them; ``env``: more settings for the worker."""
    with MailBench(bootstrap, home, emails, databases, env) as bench:
        return bench.phase(failing)


def counts(text: str) -> list[int]:
    """``--emails 3000,20000``: one or more positive counts."""
    return [positive_int(part) for part in text.split(",")]


#: Emails a worker sends before its first measured phase: connections opened, caches and tables warm.
WARM_UP = 1_000


#: Seconds past a failing event's backoffs by which all its attempts have run: the retried attempts' lateness in
#: this benchmark on SQLite, p99 up to 1.7 s each (on PostgreSQL they can queue for longer; see the README).
LATE_S = 3.0


def tail_emails(settings: Settings, rate: float) -> int:
    """Healthy emails that end a phase with failing events and have none among them: as many as the worker sends,
    at ``rate``, while the last failing event runs its attempts, so that none falls outside the phase's time."""
    policy = RetryPolicy.from_settings(settings.retry)
    backoffs = sum(policy.backoff(attempt) for attempt in range(1, policy.missing_entity_attempts))
    return math.ceil((backoffs + LATE_S) * rate)


def ratio_with_failing(
    bootstrap: str, home: Path, emails: int, failing: int, turns: int, slices: int, env: Mapping[str, str],
    databases: BenchDatabases, apart: frozenset[int] | None,
) -> dict[str, object]:
    """Healthy emails/s with and without ``failing`` events among ``emails``, in phases of one worker taking turns;
    and what each costs the worker's event loop: ms of its thread's CPU per healthy email, and the extra ms per
    failing event (its attempts in the phase, routing, relaying and storing its dead letter) against the clean
    phase of its turn.

    In a turn each kind's phase is cut into ``slices`` that alternate (clean first in even turns, failing first in
    odd ones), so drift in this machine's speed over minutes weighs on both kinds alike; each slice has its share
    of the healthy emails and of the failing events (``emails`` and ``failing`` divide by ``slices``), and a kind's
    rate is its slices' deliveries over their spans.
    """
    clean: list[Phase] = []
    with_failures: list[Phase] = []
    slice_rates: list[dict[str, list[float]]] = []
    per_slice, failing_per_slice = emails // slices, failing // slices
    with MailBench(bootstrap, home, emails, databases, env, apart) as bench:
        warm = bench.phase(0, min(emails, WARM_UP))
        tail = min(tail_emails(bench.settings, warm.rate), per_slice - failing_per_slice)
        for turn in range(turns):
            clean_slices: list[Phase] = []
            failing_slices: list[Phase] = []
            for position in range(2 * slices):
                if (position + turn) % 2:
                    failing_slices.append(bench.phase(failing_per_slice, per_slice, tail))
                else:
                    clean_slices.append(bench.phase(0, per_slice))
            clean.append(Phase.joined(clean_slices))
            with_failures.append(Phase.joined(failing_slices))
            slice_rates.append({"no_failures": [part.rate for part in clean_slices],
                                "with_failures": [part.rate for part in failing_slices]})
            print(f"  {emails:,} emails in {slices} slices each: {clean[-1].rate:6.1f}/s clean, "
                  f"{with_failures[-1].rate:6.1f}/s with {failing:,} failing", flush=True)
    late = [[attempt.late_ms for attempt in phase.retried] for phase in with_failures]
    turn_ratios = [bad.rate / good.rate for good, bad in zip(clean, with_failures)]
    return {
        "emails": emails, "failing": failing, "failing_share": failing / (emails + failing),
        "slices": slices, "tail_emails": tail,
        "no_failures": [phase.rate for phase in clean], "with_failures": [phase.rate for phase in with_failures],
        "ratio": statistics.median(turn_ratios),
        "turn_ratios": turn_ratios,
        "slice_rates": slice_rates,
        "ratio_of_medians": statistics.median(phase.rate for phase in with_failures)
        / statistics.median(phase.rate for phase in clean),
        "loop_ms_per_healthy_email": [phase.loop_cpu_s * 1000 / emails for phase in clean],
        "extra_loop_ms_per_failing_event": [
            (bad.loop_cpu_s - good.loop_cpu_s) * 1000 / failing for good, bad in zip(clean, with_failures) if failing
        ],
        "worker_cpu_s": {"no_failures": [phase.cpu_s for phase in clean],
                         "with_failures": [phase.cpu_s for phase in with_failures]},
        "worker_busy": {"no_failures": [phase.cpu_s / phase.elapsed_s for phase in clean],
                        "with_failures": [phase.cpu_s / phase.elapsed_s for phase in with_failures]},
        "other_cpus_busy": {"no_failures": [phase.others_busy for phase in clean],
                            "with_failures": [phase.others_busy for phase in with_failures]},
        "pauses": {"no_failures": [phase.pauses for phase in clean],
                   "with_failures": [phase.pauses for phase in with_failures]},
        "retried_attempts_in_phase": [len(runs) for runs in late],
        "retried_attempts_expected": 2 * failing,
        "retried_lateness_ms": {
            "p50_ms": statistics.median(percentile(runs, 0.5) for runs in late),
            "p99_ms": statistics.median(percentile(runs, 0.99) for runs in late),
            "max_ms": statistics.median(max(runs) for runs in late),
        } if all(late) else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delayed", type=positive_int, default=10_000)
    parser.add_argument("--emails", type=counts, default=[3_000, 20_000],
                        help="healthy emails per throughput run; several counts, comma-separated")
    parser.add_argument("--failing", type=non_negative_int, default=1_000,
                        help="failing events per phase; 0 makes both kinds of phase clean, so the spread of the "
                             "turns' ratios is this machine's noise")
    parser.add_argument("--repeat", type=positive_int, default=3)
    parser.add_argument("--slices", type=positive_int, default=4,
                        help="each kind's phase in a turn is cut into this many slices, the kinds alternating slice by "
                             "slice; --emails and --failing must divide by it")
    parser.add_argument("--worker-cpu", type=cpu_of_this_machine,
                        help="pin the workers to this CPU (worker.cpus), and the broker, the database, the SMTP server "
                             "and the feeders to the others")
    parser.add_argument("--postgresql", action="store_true",
                        help="the workers' database on a private PostgreSQL server, as deployed, instead of SQLite")
    args = parser.parse_args()
    env = {} if args.worker_cpu is None else {"STREAMS_WORKER__CPUS": str(args.worker_cpu)}
    apart = other_cpus(args.worker_cpu)
    if args.failing > min(args.emails):
        parser.error(f"--failing {args.failing} is more than --emails {min(args.emails)}: each failing event follows a healthy one")
    if any(count % args.slices for count in [*args.emails, args.failing]):
        parser.error(f"--emails and --failing must divide by --slices {args.slices}")

    with bench_databases(args.postgresql, apart) as databases, scratch_broker(apart) as (home, bootstrap):
        late = [lateness(bootstrap, args.delayed) for _ in range(args.repeat)]
        shares = [ratio_with_failing(bootstrap, home, emails, args.failing, args.repeat, args.slices, env, databases, apart)
                  for emails in args.emails]

    database = databases.label
    print(f"{args.delayed:,} delayed events pending at once: lateness in ms, relay passes per event and the relay "
          f"thread's CPU ms per pass (median of {args.repeat} runs):")
    lateness_summary = {key: statistics.median(run[key] for run in late) for key in late[0]}
    for key, value in lateness_summary.items():
        print(f"  {key:24} {value:8.2f}")
    for share in shares:
        clean, with_failures = share["no_failures"], share["with_failures"]
        print(f"healthy emails/s on one partition, {database}, {share['emails']:,} emails and {args.failing:,} failing events "
              f"({share['failing_share']:.1%} of all), {args.repeat} turns of {args.slices} slices each in one worker:")
        print(f"  no failures          median {statistics.median(clean):7.1f}  phases {', '.join(f'{r:.1f}' for r in clean)}")
        second = "with failing events" if args.failing else "clean, again"
        print(f"  {second:19}  median {statistics.median(with_failures):7.1f}  "
              f"phases {', '.join(f'{r:.1f}' for r in with_failures)}")
        turns = share["turn_ratios"]
        print(f"  ratio, median of turns {share['ratio']:.1%} (turns {', '.join(f'{r:.1%}' for r in turns)}; "
              f"min {min(turns):.1%}); median rates' ratio {share['ratio_of_medians']:.1%}")
        healthy_ms, failing_ms = share["loop_ms_per_healthy_email"], share["extra_loop_ms_per_failing_event"]
        print(f"  worker's event-loop CPU: {statistics.median(healthy_ms):.2f} ms per healthy email "
              f"(phases {', '.join(f'{ms:.2f}' for ms in healthy_ms)})"
              + (f"; {statistics.median(failing_ms):.2f} ms more per failing event "
                 f"(turns {', '.join(f'{ms:.2f}' for ms in failing_ms)})" if failing_ms else ""))
        for name, busy in share["worker_busy"].items():
            others = share["other_cpus_busy"][name]
            print(f"  the worker busy, {name.replace('_', ' ')}: {', '.join(f'{part:.0%}' for part in busy)}"
                  + ("" if None in others else f"; the other CPUs: {', '.join(f'{part:.0%}' for part in others)}"))
        for name, runs in share["pauses"].items():
            print(f"  pauses of {PAUSE_S} s or more between deliveries, {name.replace('_', ' ')}: "
                  + "; ".join(f"{run['pauses']} ({run['paused_s']:.1f} s, longest {run['longest_s']:.1f} s)" for run in runs))
        print(f"  retried attempts between a phase's first and last delivery: "
              f"{', '.join(f'{n:,}' for n in share['retried_attempts_in_phase'])} of {share['retried_attempts_expected']:,}; "
              f"their lateness in ms (median of phases): "
              + ", ".join(f"{key} {value:.0f}" for key, value in share["retried_lateness_ms"].items()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "retries.json"
    out.write_text(json.dumps({
        "delayed_events": args.delayed, "worker_cpu": args.worker_cpu,
        "other_cpus": None if apart is None else sorted(apart), "database": database,
        "relay": lateness_summary, "relay_runs": late, "healthy": shares,
    }, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
