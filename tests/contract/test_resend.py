"""`course notifications --resend KEY`: operations send a failed reminder again, at most once."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.channels import MemoryChannel
from activities.contacts import StaticContactDirectory
from activities.event_store import PostgresEventStore
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import Contact, DeliveryRefused, Notification, OutgoingMessage, ReminderFacts
from activities.templates import Clinic
from cli.resend import CannotResend, resend
from course.events import CourseOpened, EventEnvelope, EventMetadata, ReminderSent
from tests import story

SESSION_AT = datetime(2026, 12, 2, 9, tzinfo=UTC)
PATIENT = "pt-resend"
ADDRESS = Contact(email="patient@example.invalid")


class RefusingChannel:
    """A relay that is down (451), or that rejects the address for good (550)."""

    name = "refusing"

    def __init__(self, permanent: bool) -> None:
        self._permanent = permanent

    async def deliver(self, message: OutgoingMessage) -> None:
        raise DeliveryRefused("smtp_rcpt_550" if self._permanent else "smtp_rcpt_451", permanent=self._permanent)


async def _reminded_course(pg_pool: asyncpg.Pool) -> Notification:
    """A course whose session reminder is stored as sent (attempted), as the workflow leaves it."""
    stream = f"course-{uuid4()}"
    reminder = ReminderSent(
        key="session-3-tomorrow",
        purpose="session_tomorrow",
        recipient="patient",
        due_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        session_number=3,
        subject_at=SESSION_AT,
    )
    opened = CourseOpened(course_id=uuid4(), patient_id=PATIENT, clinician_id="dr-1")
    metadata = EventMetadata(actor=story.OPERATIONS, workflow_id=stream, run_id="r1")
    envelopes = [
        EventEnvelope(event_id=uuid4(), stream_id=stream, version=v, occurred_at=SESSION_AT, metadata=metadata, event=e)
        for v, e in enumerate([opened, reminder], start=1)
    ]
    await PostgresEventStore(pg_pool).append(stream, 0, envelopes)
    return Notification(
        idempotency_key=f"{stream}:{reminder.key}",
        stream_id=stream,
        purpose=reminder.purpose,
        recipient="patient",
        recipient_id=PATIENT,
        due_at=reminder.due_at,
        facts=ReminderFacts(session_number=3, subject_at=SESSION_AT),
    )


async def _attempt(pg_pool: asyncpg.Pool, notification: Notification, *, permanent: bool) -> None:
    """The workflow's own attempt, through a relay that refuses it."""
    sender = NotificationActivities(
        PostgresOutbox(pg_pool), RefusingChannel(permanent), StaticContactDirectory(patients={PATIENT: ADDRESS})
    )
    if permanent:
        await sender.send_notification(notification)
    else:
        with pytest.raises(ApplicationError):
            await sender.send_notification(notification)


async def _status(pg_pool: asyncpg.Pool, key: str) -> tuple[str, int]:
    row = await pg_pool.fetchrow("SELECT status, attempts FROM notifications WHERE idempotency_key = $1", key)
    assert row is not None
    return row["status"], row["attempts"]


@pytest.mark.parametrize("permanent", [False, True], ids=["failed", "undeliverable"])
async def test_a_refused_reminder_is_resent_once_with_its_session_facts(pg_pool: asyncpg.Pool, permanent: bool) -> None:
    notification = await _reminded_course(pg_pool)
    await _attempt(pg_pool, notification, permanent=permanent)
    assert (await _status(pg_pool, notification.idempotency_key))[0] == ("undeliverable" if permanent else "failed")

    channel = MemoryChannel()
    contacts = StaticContactDirectory(patients={PATIENT: ADDRESS})
    outcome = await resend(pg_pool, notification.idempotency_key, channel, contacts, Clinic())
    assert outcome == {"key": notification.idempotency_key, "status": "delivered", "error": None}
    assert channel.sent == [notification]  # the facts came back from the ReminderSent event
    assert await _status(pg_pool, notification.idempotency_key) == ("delivered", 2)

    with pytest.raises(CannotResend, match="delivered"):
        await resend(pg_pool, notification.idempotency_key, channel, contacts, Clinic())
    assert len(channel.sent) == 1


async def test_a_resend_that_is_refused_again_reports_the_code_and_stays_failed(pg_pool: asyncpg.Pool) -> None:
    notification = await _reminded_course(pg_pool)
    await _attempt(pg_pool, notification, permanent=False)
    contacts = StaticContactDirectory(patients={PATIENT: ADDRESS})
    outcome = await resend(pg_pool, notification.idempotency_key, RefusingChannel(False), contacts, Clinic())
    assert (outcome["status"], outcome["error"]) == ("failed", "smtp_rcpt_451")


async def test_an_uncertain_or_unknown_reminder_is_not_resent(pg_pool: asyncpg.Pool) -> None:
    notification = await _reminded_course(pg_pool)
    outbox = PostgresOutbox(pg_pool)
    await outbox.claim(notification, "attempt-that-died")
    await outbox.claim(notification, "next-attempt")  # finds the first still `sending`: uncertain
    channel = MemoryChannel()
    contacts = StaticContactDirectory(patients={PATIENT: ADDRESS})
    with pytest.raises(CannotResend, match="uncertain"):
        await resend(pg_pool, notification.idempotency_key, channel, contacts, Clinic())
    with pytest.raises(CannotResend, match="No notification"):
        await resend(pg_pool, f"course-{uuid4()}:nothing", channel, contacts, Clinic())
    assert channel.sent == []
