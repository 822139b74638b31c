"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
import time
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Inbox:
    """aiosmtpd handler: every accepted message, parsed, in arrival order.

    Like a greylisting server it can refuse a recipient with a temporary 451 (a number of times,
    or always), and it keeps the time of every attempt to deliver to each recipient. Like a remote
    provider's server it can take ``delay`` seconds to accept each message.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.messages: list[Message] = []
        #: The client address each message came from: one per connection.
        self.peers: list[tuple[str, int]] = []
        self.attempts: dict[str, list[float]] = {}
        self._refusals: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def refuse(self, recipient: str, times: float = float("inf"), code: int = 451) -> None:
        """Refuse the next ``times`` attempts to deliver to ``recipient`` (every one by default) with ``code``."""
        with self._lock:
            self._refusals[recipient] = (times, code)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list) -> str:
        with self._lock:
            self.attempts.setdefault(address, []).append(time.time())
            times, code = self._refusals.get(address, (0, 0))
            if times > 0:
                self._refusals[address] = (times - 1, code)
                return f"{code} {'4.7.1 Greylisted, please try again later' if code < 500 else '5.1.1 No such mailbox'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.messages.append(message_from_bytes(envelope.original_content))
            self.peers.append(session.peer)
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[Message]:
        with self._lock:
            return [message for message in self.messages if message["To"] == recipient]

    def recipients(self) -> Counter[str]:
        """Messages received per recipient."""
        with self._lock:
            return Counter(message["To"] for message in self.messages)

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return list(self.messages)


class SmtpServer:
    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.inbox = Inbox(delay)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port)
        self.port = port

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Stop, closing every client's connection, and listen again on the same port with the same inbox."""
        self.controller.stop()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
