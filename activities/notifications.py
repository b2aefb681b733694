"""Patient and staff notifications: an outbox row per idempotency key, then a channel.

Delivery is **at most once per key**, and honest about the one case it cannot settle:

1. `claim`: in one transaction the row is inserted (once per key) and claimed for this attempt
   (`sending`, a fresh claim id). Only new, `pending` or `failed` rows can be claimed.
2. The address is looked up, the template rendered, the channel delivers.
3. `delivered` is recorded under the same claim id.

A retried or replayed activity finds `delivered` and returns a duplicate. A channel that
definitely sent nothing (`DeliveryRefused`) leaves the row `failed`, so the retry claims and
sends it. If an attempt dies between handing the message over and recording it (SIGKILL, a lost
connection during SMTP DATA, the database gone at step 3), nobody knows whether the recipient
got it. The next attempt finds the row still `sending` under a claim that is not its own and
marks it `delivery_uncertain` instead of sending again: a second "your session is tomorrow"
mail is the failure the outbox exists to prevent, and SMTP gives a sender no way to ask a relay
whether it already accepted a message. Uncertain rows are surfaced to operations (`course
notifications --attention`, a warning log line) with the message's deterministic Message-ID,
which finds it in the relay's log; if the first attempt was in fact alive and finishes, its own
claim id still lets it record `delivered`. A channel with a provider-side idempotency key (an SMS
or mail API) could resend uncertain rows safely; SMTP has none, so it does not.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import ConsoleChannel, MemoryChannel
from activities.contacts import StaticContactDirectory
from activities.ports import (
    Channel,
    Claim,
    ContactDirectory,
    DeliveryRefused,
    DeliveryResult,
    DeliveryStatus,
    Notification,
    Outbox,
)
from activities.templates import Clinic, render

__all__ = ["ConsoleChannel", "InMemoryOutbox", "MemoryChannel", "NotificationActivities", "PostgresOutbox"]

log = structlog.get_logger(__name__)

CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
ATTEMPT_LOST = "attempt_lost"


@dataclass
class OutboxRow:
    notification: Notification
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    claim_id: str | None = None
    channel: str | None = None
    message_id: str | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


class InMemoryOutbox:
    """The same state machine as PostgreSQL, in a dict: for unit and time-skipping tests."""

    def __init__(self) -> None:
        self.rows: dict[str, OutboxRow] = {}

    async def claim(self, notification: Notification, claim_id: str) -> Claim:
        row = self.rows.setdefault(notification.idempotency_key, OutboxRow(notification))
        if row.status in CLAIMABLE:
            row.status, row.claim_id, row.attempts = DeliveryStatus.SENDING, claim_id, row.attempts + 1
            return Claim(status=DeliveryStatus.SENDING, attempts=row.attempts)
        if row.status is DeliveryStatus.SENDING:
            row.status, row.last_error = DeliveryStatus.DELIVERY_UNCERTAIN, ATTEMPT_LOST
        return Claim(status=row.status, attempts=row.attempts)

    async def mark_delivered(
        self, key: str, channel: str, at: datetime, *, claim_id: str | None = None, message_id: str | None = None
    ) -> None:
        row = self.rows.get(key)
        if row is None or row.status is DeliveryStatus.DELIVERED:
            return
        if claim_id is None or row.claim_id == claim_id:
            row.status, row.channel, row.delivered_at = DeliveryStatus.DELIVERED, channel, at
            row.message_id = message_id

    async def mark_failed(
        self, key: str, claim_id: str, status: DeliveryStatus, error: str, *, channel: str | None = None
    ) -> None:
        row = self.rows.get(key)
        if row is None or row.claim_id != claim_id:
            return
        if row.status in (DeliveryStatus.SENDING, DeliveryStatus.DELIVERY_UNCERTAIN):
            row.status, row.last_error, row.channel = status, error, channel or row.channel


_CLAIM_INSERT = """
INSERT INTO notifications (idempotency_key, stream_id, purpose, recipient, recipient_id, due_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (idempotency_key) DO NOTHING
"""


class PostgresOutbox:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, notification: Notification, claim_id: str) -> Claim:
        key = notification.idempotency_key
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _CLAIM_INSERT,
                key,
                notification.stream_id,
                notification.purpose,
                notification.recipient,
                notification.recipient_id,
                notification.due_at,
            )
            # The row lock serialises concurrent attempts for one key; other keys never wait.
            row = await conn.fetchrow(
                "SELECT status, attempts FROM notifications WHERE idempotency_key = $1 FOR UPDATE", key
            )
            assert row is not None
            status = DeliveryStatus(row["status"])
            if status in CLAIMABLE:
                attempts = await conn.fetchval(
                    "UPDATE notifications SET status = 'sending', claim_id = $2, claimed_at = now(), "
                    "attempts = attempts + 1, updated_at = now() WHERE idempotency_key = $1 RETURNING attempts",
                    key,
                    claim_id,
                )
                return Claim(status=DeliveryStatus.SENDING, attempts=attempts)
            if status is DeliveryStatus.SENDING:
                await conn.execute(
                    "UPDATE notifications SET status = 'delivery_uncertain', last_error = $2, updated_at = now() "
                    "WHERE idempotency_key = $1",
                    key,
                    ATTEMPT_LOST,
                )
                status = DeliveryStatus.DELIVERY_UNCERTAIN
            return Claim(status=status, attempts=row["attempts"])

    async def mark_delivered(
        self, key: str, channel: str, at: datetime, *, claim_id: str | None = None, message_id: str | None = None
    ) -> None:
        await self._pool.execute(
            "UPDATE notifications SET status = 'delivered', delivered_at = $2, channel = $3, message_id = $5, "
            "updated_at = now() WHERE idempotency_key = $1 AND status <> 'delivered' "
            "AND ($4::text IS NULL OR claim_id = $4)",
            key,
            at,
            channel,
            claim_id,
            message_id,
        )

    async def mark_failed(
        self, key: str, claim_id: str, status: DeliveryStatus, error: str, *, channel: str | None = None
    ) -> None:
        await self._pool.execute(
            "UPDATE notifications SET status = $3, last_error = $4, channel = coalesce($5, channel), "
            "updated_at = now() WHERE idempotency_key = $1 AND claim_id = $2 "
            "AND status IN ('sending', 'delivery_uncertain')",
            key,
            claim_id,
            status.value,
            error,
            channel,
        )


class NotificationActivities:
    def __init__(
        self,
        outbox: Outbox,
        channel: Channel,
        contacts: ContactDirectory | None = None,
        clinic: Clinic | None = None,
    ) -> None:
        self._outbox = outbox
        self._channel = channel
        self._contacts = contacts or StaticContactDirectory()
        self._clinic = clinic or Clinic()

    @activity.defn
    async def send_notification(self, notification: Notification) -> DeliveryResult:
        key, claim_id = notification.idempotency_key, str(uuid.uuid4())
        # Opaque fields only: the key and the purpose say which reminder, never to whom.
        about = {"key": key, "purpose": notification.purpose, "recipient": notification.recipient}
        claim = await self._outbox.claim(notification, claim_id)
        if claim.status is not DeliveryStatus.SENDING:
            if claim.status is DeliveryStatus.DELIVERY_UNCERTAIN:
                log.warning("notification delivery uncertain: not resent", **about)
            return DeliveryResult(delivered=False, duplicate=True, status=claim.status)
        try:
            contact = await self._contacts.contact_for(notification.recipient, notification.recipient_id)
            message = render(notification, contact, self._clinic)
        except DeliveryRefused as refused:
            return await self._refused(key, claim_id, refused, about)
        except Exception as error:  # noqa: BLE001 - any failure here happened before delivery
            # Nothing was handed to the channel yet: a plain failure, safe to retry.
            await self._outbox.mark_failed(key, claim_id, DeliveryStatus.FAILED, f"lookup_{type(error).__name__}")
            raise ApplicationError(f"notification not prepared ({type(error).__name__})", type="NotPrepared") from None
        try:
            await self._channel.deliver(message)
        except DeliveryRefused as refused:
            return await self._refused(key, claim_id, refused, about)
        except BaseException as error:
            # Handed over, fate unknown: never send this key again (see the module docstring).
            marked = await self._mark_uncertain(key, claim_id, type(error).__name__)
            if isinstance(error, Exception) and marked:
                log.warning("notification delivery uncertain: not resent", error=type(error).__name__, **about)
                return DeliveryResult(delivered=False, duplicate=False, status=DeliveryStatus.DELIVERY_UNCERTAIN)
            raise
        await self._outbox.mark_delivered(
            key, self._channel.name, datetime.now(UTC), claim_id=claim_id, message_id=message.message_id
        )
        return DeliveryResult(delivered=True, duplicate=False, status=DeliveryStatus.DELIVERED)

    async def _refused(
        self, key: str, claim_id: str, refused: DeliveryRefused, about: dict[str, str]
    ) -> DeliveryResult:
        if refused.permanent:
            await self._outbox.mark_failed(
                key, claim_id, DeliveryStatus.UNDELIVERABLE, refused.code, channel=self._channel.name
            )
            log.warning("notification undeliverable", error=refused.code, **about)
            return DeliveryResult(delivered=False, duplicate=False, status=DeliveryStatus.UNDELIVERABLE)
        await self._outbox.mark_failed(key, claim_id, DeliveryStatus.FAILED, refused.code, channel=self._channel.name)
        # Retryable: nothing reached the recipient, so the next attempt may claim and send.
        raise ApplicationError(f"notification not delivered ({refused.code})", type="DeliveryRefused") from None

    async def _mark_uncertain(self, key: str, claim_id: str, error: str) -> bool:
        # Shielded: a cancelled attempt must still leave its mark, or the row waits in `sending`
        # until the next attempt (if any) settles it.
        try:
            await asyncio.shield(
                self._outbox.mark_failed(
                    key, claim_id, DeliveryStatus.DELIVERY_UNCERTAIN, error, channel=self._channel.name
                )
            )
        except Exception:  # noqa: BLE001 - the row stays `sending`; the next claim settles it the same way
            return False
        return True
