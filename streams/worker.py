"""The worker ``faust -A streams.app worker`` runs: Faust's, knowing when it is ready and stopping in bounded time.

Ready is the moment Faust logs ``Worker: Ready``: the tables are recovered, the agents and the
web view run. Before it, /health answers "starting" and asks the broker nothing.

Stopping waits for the agents, the commits and the clients, and each of those can wait on a
broker that is going away. So a stop has a deadline (``worker.stop_timeout``), counted from the
signal: a thread that needs nothing of the event loop ends the process at the deadline with one
log line naming what was still pending, and exit code 0 (1 if the worker had crashed). Whatever
that abandons is what a killed worker leaves: uncommitted offsets are read again and open
transactions are aborted, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable

import faust

logger = logging.getLogger(__name__)

#: Set once this process's worker is ready, cleared again when it starts to stop.
ready = threading.Event()
#: Set when the worker starts to stop.
stopping = threading.Event()


def state() -> str:
    """``starting``, ``ready`` or ``stopping``: this process's worker, as /health names it."""
    return "stopping" if stopping.is_set() else "ready" if ready.is_set() else "starting"


class StopDeadline:
    """Ends the process ``timeout`` seconds after ``start()``, unless it has exited by then."""

    def __init__(self, timeout: float, loop: asyncio.AbstractEventLoop, crashed: Callable[[], bool]) -> None:
        self.timeout = timeout
        self.loop = loop
        self.crashed = crashed
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.timeout, self.expire)
            self._timer.name = "stop-deadline"
            self._timer.daemon = True
            self._timer.start()

    def pending(self) -> Counter[str]:
        """The event loop's tasks not yet done, by the name of what they run, read from this thread."""
        try:
            tasks = asyncio.all_tasks(self.loop)
        except RuntimeError:
            return Counter()
        return Counter(getattr(task.get_coro(), "__qualname__", "?") for task in tasks if not task.done())

    def expire(self) -> None:
        code = 1 if self.crashed() else 0
        pending = self.pending()
        logger.warning(
            "worker did not stop within %.0fs (worker.stop_timeout); exiting with %d and abandoning %d pending task(s): %s",
            self.timeout, code, pending.total(),
            ", ".join(f"{name} x{count}" for name, count in sorted(pending.items())) or "none on the event loop",
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class StreamsWorker(faust.Worker):
    """Faust's worker with a readiness flag and a deadline on stopping (``worker.stop_timeout``)."""

    #: Seconds from the stop signal to the end of the process; ``worker_class`` sets it from the settings.
    stop_timeout: float = 30.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.deadline = StopDeadline(self.stop_timeout, self.loop, lambda: self.crashed)

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        self.loop.add_signal_handler(signal.SIGINT, self.on_stop_signal, signal.SIGINT)
        self.loop.add_signal_handler(signal.SIGTERM, self.on_stop_signal, signal.SIGTERM)

    def on_stop_signal(self, signum: signal.Signals) -> None:
        self.begin_stopping()
        if signum == signal.SIGINT:
            self._on_sigint()
        else:
            self._on_sigterm()

    def begin_stopping(self) -> None:
        ready.clear()
        stopping.set()
        self.deadline.start()

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        if not stopping.is_set():
            ready.set()

    def on_worker_shutdown(self) -> None:
        """Also reached when the worker stops without a signal, after a crash."""
        self.begin_stopping()
        super().on_worker_shutdown()


def worker_class(stop_timeout: float) -> type[StreamsWorker]:
    """The worker class for Faust's ``Worker`` setting, stopping within ``stop_timeout`` seconds."""
    return type("StreamsWorker", (StreamsWorker,), {"stop_timeout": stop_timeout})
