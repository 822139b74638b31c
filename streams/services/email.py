"""Email: the templates users receive, and real delivery over SMTP with aiosmtplib."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from string import Template

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from streams.db.models import EmailLog
from streams.errors import PermanentError, StreamsError
from streams.events import Event
from streams.settings import SmtpSettings


class UnknownTemplateError(PermanentError):
    """No email template has that name: permanent, retrying will not help."""


class TemplateDataError(PermanentError):
    """The template needs a value the event did not carry: permanent."""


class SmtpUnavailableError(StreamsError):
    """The SMTP server could not be reached or answered with a temporary (4xx) refusal: worth retrying."""


class SmtpRejectedError(SmtpUnavailableError, PermanentError):
    """The SMTP server refused the message for good (a 5xx answer, such as an unknown mailbox)."""


@dataclass(frozen=True)
class EmailTemplate:
    subject: Template
    body: Template

    def render(self, name: str, values: dict[str, str]) -> tuple[str, str]:
        try:
            return self.subject.substitute(values), self.body.substitute(values)
        except KeyError as missing:
            raise TemplateDataError(f"template {name!r} needs {missing.args[0]!r} in the event's data") from None


def template(subject: str, body: str) -> EmailTemplate:
    return EmailTemplate(Template(subject), Template(body))


TEMPLATES: dict[str, EmailTemplate] = {
    "welcome": template(
        "Welcome to our platform, $username!",
        "Hi $username,\n\nThanks for signing up. Your profile is ready.\n",
    ),
    "password_reset": template(
        "Reset your password",
        "Hi $username,\n\nUse this code to reset your password: $token\nIf you did not ask for it, ignore this email.\n",
    ),
    "post_notification": template(
        "$author posted something new",
        "Hi $username,\n\n$author wrote a new post: $post_url\n",
    ),
    "newsletter": template("$title", "Hi $username,\n\n$body\n"),
    "announcement": template("$title", "Hi $username,\n\n$body\n"),
    "promotion": template("$title", "Hi $username,\n\n$body\n"),
}


def render(name: str, values: dict[str, str]) -> tuple[str, str]:
    """Subject and body; raises UnknownTemplateError or TemplateDataError before anything is sent."""
    if name not in TEMPLATES:
        raise UnknownTemplateError(f"unknown email template {name!r}; known: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[name].render(name, values)


def smtp_code(error: Exception) -> int:
    """The server's reply code behind an SMTP error, 0 when there was none (no connection, a timeout)."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        return min(refused.code for refused in error.recipients)
    return getattr(error, "code", 0) if isinstance(error, aiosmtplib.SMTPResponseException) else 0


#: A connection idle this long is closed rather than used again: servers drop quiet clients after a few
#: minutes (RFC 5321 suggests five), and one dropped in the moment it is reused would fail its email.
IDLE_S = 30.0
#: Idle connections kept for reuse; more than the emails a worker sends at once is never needed.
MAX_IDLE = 16


@dataclass
class Connection:
    client: aiosmtplib.SMTP
    sent: int = 0
    idle_since: float = 0.0


class Mailer:
    """Sends messages over SMTP connections kept open between emails.

    A connection per email costs the connect, the greeting, EHLO (with STARTTLS and login when set)
    and QUIT around the message's own MAIL, RCPT and DATA: twice the round trips, a TLS handshake
    each, and a socket left in TIME_WAIT per email. Each send takes an idle connection (or opens
    one) for itself. A connection serves on after a permanent refusal of one message (a 5xx, after
    which aiosmtplib resets the envelope); after any other error, a temporary refusal included
    (which may be about the session, such as too many messages), it is closed.
    """

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp
        self.idle: list[Connection] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def send(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        connection: Connection | None = None
        try:
            connection = await self.connection()
            connection.sent += 1
            await connection.client.send_message(message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            code = smtp_code(exc)
            if connection is not None and code >= 500:
                await self.put_back(connection)
            elif connection is not None:
                connection.client.close()
            error = SmtpRejectedError if code >= 500 else SmtpUnavailableError
            raise error(f"SMTP {self.smtp.host}:{self.smtp.port}: {exc}") from None
        except BaseException:
            if connection is not None:
                connection.client.close()
            raise
        await self.put_back(connection)

    async def connection(self) -> Connection:
        """An idle connection that is still open and fresh, else a new one."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            self.idle, self.loop = [], loop
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if connection.client.is_connected and now - connection.idle_since < IDLE_S:
                return connection
            connection.client.close()
        client = aiosmtplib.SMTP(
            hostname=self.smtp.host,
            port=self.smtp.port,
            username=self.smtp.username,
            password=self.smtp.password.get_secret_value() if self.smtp.password else None,
            start_tls=self.smtp.start_tls,
            timeout=self.smtp.timeout,
        )
        await client.connect()
        return Connection(client)

    async def put_back(self, connection: Connection) -> None:
        """Keep the connection for the next email, or end it: QUIT once it has sent its share of messages."""
        client = connection.client
        if not client.is_connected:
            return
        if connection.sent >= self.smtp.messages_per_connection:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            client.close()
        elif len(self.idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)
        else:
            client.close()


async def deliver(
    session: AsyncSession, mailer: Mailer, event: Event, recipient: str, template_name: str, values: dict[str, str]
) -> None:
    """Render and send one email, logging it in the caller's transaction.

    A failed send is logged in a transaction of its own, so the failure stays on record when
    the caller's transaction rolls back, and the error goes on to the caller.
    """
    subject, body = render(template_name, values)
    log = {"event_id": str(event.id), "recipient": recipient, "template": template_name}
    try:
        await mailer.send(recipient, subject, body)
    except SmtpUnavailableError as exc:
        async with AsyncSession(session.bind) as failures, failures.begin():
            failures.add(EmailLog(**log, status="failed", error=str(exc)))
        raise
    session.add(EmailLog(**log, status="sent"))
