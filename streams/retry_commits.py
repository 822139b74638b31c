"""Under exactly-once a retry is visible only once its transaction commits, so commit before it is due.

A retry sent to a delay tier belongs to its source partition's transaction (streams.sending),
and Faust commits transactions on a timer (broker_commit_interval, 2.8 s by default). Left to
the timer, the relay (reading committed records only) would see a retry with a 1 s backoff up to
about 4 s after the failure. After routing a retry the worker asks for a commit within a quarter
of the shortest backoff; one commit serves every retry routed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging

import faust

logger = logging.getLogger(__name__)


class CommitSoon:
    """Starts a commit of the worker's consumer at most ``within`` seconds after the first request."""

    def __init__(self, app: faust.App, within: float) -> None:
        self.app = app
        self.within = within
        self._pending: asyncio.Task[None] | None = None

    def request(self) -> None:
        """Make sure a commit starts within ``within`` seconds; nothing to do outside transactions."""
        if self.app.in_transaction and (self._pending is None or self._pending.done()):
            self._pending = asyncio.ensure_future(self._commit_later())

    async def _commit_later(self) -> None:
        await asyncio.sleep(self.within)
        if self.stopping:
            return
        try:
            await self.app.consumer.commit()
        except Exception:
            if self.stopping:
                logger.info("an early commit for routed retries was cut short: the worker is stopping")
                return
            logger.exception("an early commit for routed retries failed; the next timed commit makes them visible")

    @property
    def stopping(self) -> bool:
        """The worker commits what it can while it stops; an early commit then only races that."""
        return self.app.should_stop or self.app.consumer.should_stop
