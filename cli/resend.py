"""`course notifications --resend KEY`: send a failed or undeliverable reminder again, by hand.

Operations use it after fixing what stopped the reminder (a relay outage, a wrong or missing
address). It goes through the same outbox claim and delivery as the workflow's activity, so the
key is still delivered at most once. A reminder whose delivery is uncertain is refused: it may
have reached the recipient, and only a person can find out. The course itself is not involved:
it recorded the reminder as attempted when it sent it, and a resend changes only the outbox.
"""

from __future__ import annotations

import contextlib

import asyncpg
from temporalio.exceptions import ApplicationError

from activities.event_store import PostgresEventStore
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import (
    Channel,
    ContactDirectory,
    DeliveryStatus,
    Notification,
    ReminderFacts,
)
from activities.templates import Clinic
from course.events import ReminderSent

RESENDABLE = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERABLE)


class CannotResend(Exception):
    """Why this key is not sent again; the message names the key and its status, nothing else."""


async def resend(
    pool: asyncpg.Pool, key: str, channel: Channel, contacts: ContactDirectory, clinic: Clinic
) -> dict[str, str | None]:
    """Attempt the key once more; returns its outbox status and error code afterwards."""
    row = await pool.fetchrow(
        "SELECT stream_id, purpose, recipient, recipient_id, due_at, status FROM notifications "
        "WHERE idempotency_key = $1",
        key,
    )
    if row is None:
        raise CannotResend(f"No notification with key {key}.")
    status = DeliveryStatus(row["status"])
    if status is DeliveryStatus.DELIVERY_UNCERTAIN:
        raise CannotResend(
            f"{key}: delivery is uncertain (the attempt died mid-send), so it may have arrived. "
            "Check with the recipient; it is not sent twice by this command."
        )
    if status not in RESENDABLE:
        raise CannotResend(f"{key} is {status.value}; only failed or undeliverable notifications are resent.")
    notification = Notification(
        idempotency_key=key,
        stream_id=row["stream_id"],
        purpose=row["purpose"],
        recipient=row["recipient"],
        recipient_id=row["recipient_id"],
        due_at=row["due_at"],
        facts=await _facts(pool, row["stream_id"], key),
    )
    # Undeliverable is final for the workflow's retries; a person reopening it makes it claimable.
    await pool.execute(
        "UPDATE notifications SET status = 'failed', updated_at = now() "
        "WHERE idempotency_key = $1 AND status = 'undeliverable'",
        key,
    )
    sender = NotificationActivities(PostgresOutbox(pool), channel, contacts, clinic)
    # A retryable refusal raises for the workflow's retry policy; here a person is waiting, and
    # the outbox row (left `failed` with its code) is the answer.
    with contextlib.suppress(ApplicationError):
        await sender.send_notification(notification)
    after = await pool.fetchrow("SELECT status, last_error FROM notifications WHERE idempotency_key = $1", key)
    assert after is not None
    # A delivered row keeps the code of the failure before it; that is history, not an error now.
    error = None if after["status"] == DeliveryStatus.DELIVERED.value else after["last_error"]
    return {"key": key, "status": after["status"], "error": error}


async def _facts(pool: asyncpg.Pool, stream_id: str, key: str) -> ReminderFacts | None:
    """The template's facts (session number, time) from the ReminderSent event the key belongs to."""
    for envelope in reversed(await PostgresEventStore(pool).read(stream_id)):
        event = envelope.event
        if isinstance(event, ReminderSent) and key == f"{stream_id}:{event.key}":
            return ReminderFacts(session_number=event.session_number, subject_at=event.subject_at)
    return None
