"""Delivery channels: console (development), SMTP (aiosmtplib), memory (tests).

A channel tells the notification activity one of three things: delivered (returns), definitely
not delivered (`DeliveryRefused`: nothing reached the recipient, a retry is safe), or anything
else, which means nobody knows, so the outbox records `delivery_uncertain` and never resends.
"""

from __future__ import annotations

import contextlib
import email.policy
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Literal

import aiosmtplib
import structlog

from activities.ports import DeliveryRefused, Notification, OutgoingMessage

log = structlog.get_logger(__name__)

SmtpTls = Literal["none", "starttls", "implicit"]
# CRLF on the wire; long headers unfolded (RFC 5322 allows 998): Python folds a subject that
# starts with a long course id into one that starts with a space.
WIRE = email.policy.SMTP.clone(max_line_length=998)


class ConsoleChannel:
    """Writes a log line per notification: for development and for clinics without a gateway.

    Purpose, opaque key and Message-ID only: never the address, the name or the message text.
    """

    name = "console"

    async def deliver(self, message: OutgoingMessage) -> None:
        notification = message.notification
        log.info(
            "notification delivered",
            channel=self.name,
            key=notification.idempotency_key,
            purpose=notification.purpose,
            recipient=notification.recipient,
            message_id=message.message_id,
        )


class MemoryChannel:
    """Keeps what it was given: for tests."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.messages: list[OutgoingMessage] = []

    async def deliver(self, message: OutgoingMessage) -> None:
        self.messages.append(message)
        self.sent.append(message.notification)


def _refused(stage: str, error: Exception, *, rejects_recipient: bool = False) -> DeliveryRefused:
    code = getattr(error, "code", None)
    if isinstance(code, int):
        # 5xx on RCPT or DATA: the server will not take this message for this address, ever.
        return DeliveryRefused(f"smtp_{stage}_{code}", permanent=rejects_recipient and code >= 500)
    return DeliveryRefused(f"smtp_{stage}_{type(error).__name__.lower()}")


class SmtpChannel:
    """Sends mail through the clinic's relay, one connection per message (reminders are few).

    TLS: `starttls` (default, port 587), `implicit` (port 465) or `none` (a relay on localhost).
    Every step before DATA that fails means nothing was sent; a reply code to DATA is the
    server's definite answer; a connection lost or timed out during DATA is the one case where
    the message may or may not have been accepted, and it is left to the caller as unknown.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        sender_name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: SmtpTls = "starttls",
        timeout: float = 20.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port, self._sender, self._sender_name = host, port, sender, sender_name
        self._username, self._password = username, password
        self._tls, self._timeout, self._tls_context = tls, timeout, tls_context

    def _email(self, message: OutgoingMessage, to: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = formataddr((self._sender_name, self._sender)) if self._sender_name else self._sender
        mail["To"] = to
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = message.message_id
        # RFC 3834: machine-sent, so auto-responders do not answer it.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body)
        return mail

    async def deliver(self, message: OutgoingMessage) -> None:
        to = message.contact.email if message.contact else None
        if not to:
            raise DeliveryRefused("no_address", permanent=True)
        try:
            mail = self._email(message, to)
        except (ValueError, TypeError):
            # A malformed address on file (a line break, say): nothing was sent, and never will be.
            raise DeliveryRefused("malformed_address", permanent=True) from None
        smtp = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._tls == "implicit",
            start_tls=self._tls == "starttls",
            timeout=self._timeout,
            tls_context=self._tls_context,
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            raise _refused("connect", error) from None
        try:
            try:
                await smtp.mail(self._sender)
            except (aiosmtplib.SMTPException, OSError) as error:
                raise _refused("mail", error) from None
            try:
                await smtp.rcpt(to)
            except (aiosmtplib.SMTPException, OSError) as error:
                raise _refused("rcpt", error, rejects_recipient=True) from None
            try:
                await smtp.data(mail.as_bytes(policy=WIRE))
            except aiosmtplib.SMTPResponseException as error:
                raise _refused("data", error, rejects_recipient=True) from None
            # Anything else during DATA (connection lost, timeout) propagates: outcome unknown.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()  # the message is accepted; a failed goodbye changes nothing
        finally:
            smtp.close()
