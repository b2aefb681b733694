"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it accepts.

It can refuse recipients on cue (`refuse("451 4.3.0 try again later")`), require STARTTLS and a
login, and it records each accepted message's Message-ID, so a test can count deliveries.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Mailbox:
    port: int = 0
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def refuse(self, *replies: str) -> None:
        """The next RCPTs get these replies, one each, instead of 250."""
        self.refusals.extend(replies)

    @property
    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.received]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_smtp(tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None) -> Iterator[Mailbox]:
    """STARTTLS is offered (and required) when `tls` is given; a login when `login` is."""
    mailbox = Mailbox(port=_free_port())

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            login is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == login
        )
        return AuthResult(success=ok)

    options: dict[str, Any] = {}
    if tls:
        options.update(tls_context=tls, require_starttls=True)
    if login:
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls is not None)
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port, ready_timeout=10, **options)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
