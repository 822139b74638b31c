"""Email delivery over a real SMTP server (aiosmtpd): connections kept open between emails."""

from __future__ import annotations

import asyncio

import pytest

from streams.services.email import Mailer, SmtpRejectedError, SmtpUnavailableError
from streams.settings import SmtpSettings


def test_emails_share_a_connection_and_a_refused_recipient_does_not_end_it(smtp_server) -> None:
    smtp_server.inbox.refuse("nobody@example.com", code=550)
    mailer = Mailer(SmtpSettings(port=smtp_server.port))

    async def send_all() -> None:
        for n in range(5):
            await mailer.send(f"user{n}@example.com", f"hello {n}", "body")
        with pytest.raises(SmtpRejectedError):
            await mailer.send("nobody@example.com", "hello", "body")
        await mailer.send("after@example.com", "hello again", "body")
        await asyncio.gather(*(mailer.send(f"together{n}@example.com", "at once", "body") for n in range(4)))

    asyncio.run(send_all())
    inbox = smtp_server.inbox
    assert [message["Subject"] for message in inbox.messages[:6]] == [*(f"hello {n}" for n in range(5)), "hello again"]
    assert len(inbox.messages) == 10 and "nobody@example.com" not in inbox.recipients()
    assert len(set(inbox.peers[:6])) == 1, inbox.peers
    assert len(set(inbox.peers)) == 4, inbox.peers


def test_a_connection_the_server_closed_is_not_used_again(smtp_server) -> None:
    mailer = Mailer(SmtpSettings(port=smtp_server.port))

    async def send_across_a_restart() -> None:
        await mailer.send("before@example.com", "before", "body")
        await asyncio.to_thread(smtp_server.restart)
        await asyncio.sleep(0.2)
        await mailer.send("after@example.com", "after", "body")

    asyncio.run(send_across_a_restart())
    inbox = smtp_server.inbox
    assert [message["To"] for message in inbox.messages] == ["before@example.com", "after@example.com"]
    assert inbox.peers[0] != inbox.peers[1]


def test_a_connection_quits_after_its_share_of_messages_and_after_a_temporary_refusal(smtp_server) -> None:
    smtp_server.inbox.refuse("later@example.com", times=1, code=451)
    mailer = Mailer(SmtpSettings(port=smtp_server.port, messages_per_connection=2))

    async def send_all() -> None:
        for n in range(5):
            await mailer.send(f"user{n}@example.com", f"hello {n}", "body")
        with pytest.raises(SmtpUnavailableError):
            await mailer.send("later@example.com", "greylisted", "body")
        await mailer.send("later@example.com", "again", "body")

    asyncio.run(send_all())
    peers = smtp_server.inbox.peers
    assert len(peers) == 6
    assert peers[0] == peers[1] and peers[2] == peers[3] and len({peers[0], peers[2], peers[4], peers[5]}) == 4
