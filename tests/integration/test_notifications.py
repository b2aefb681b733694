"""Reminders by mail, exactly once in effect: a real SMTP server (aiosmtpd) and PostgreSQL's outbox.

Given a patient with an address on file, when the course's reminder falls due, then the patient
gets one mail, however often the activity is retried, and even when the worker dies mid-send.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.channels import SmtpChannel
from activities.contacts import PostgresContactDirectory
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import (
    NURSE_ON_DUTY,
    Channel,
    Contact,
    DeliveryStatus,
    Notification,
    OutgoingMessage,
    ReminderFacts,
)
from activities.templates import Clinic
from tests.conftest import task_queue
from tests.integration.notify_workflow import NotifyOnce
from tests.smtp_server import Mailbox, running_smtp
from tests.tls import local_certificate

pytestmark = pytest.mark.integration

CLINIC = Clinic(name="Calm Harbor Clinic", phone="555-0199", time_zone="Europe/London", mail_domain="calm.example")
SENDER = "reminders@calm.example"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with running_smtp() as box:
        yield box


def smtp(box: Mailbox, **options: object) -> SmtpChannel:
    return SmtpChannel("127.0.0.1", box.port, SENDER, sender_name="Calm Harbor Clinic", timeout=5, **options)  # type: ignore[arg-type]


async def a_patient(pool: asyncpg.Pool, email: str | None = "jordan@example.org") -> str:
    patient = f"pt-{uuid.uuid4().hex[:8]}"
    await pool.execute(
        "INSERT INTO patient_contacts (patient_id, email, display_name, time_zone) VALUES ($1, $2, $3, $4)",
        patient,
        email,
        "Jordan",
        "Europe/London",
    )
    return patient


def session_reminder(patient: str, course: str | None = None) -> Notification:
    course = course or f"course-{uuid.uuid4()}"
    session_at = datetime(2026, 12, 1, 15, tzinfo=UTC)
    return Notification(
        idempotency_key=f"{course}:session-1-reminder-{session_at.isoformat()}",
        stream_id=course,
        purpose="session_tomorrow",
        recipient="patient",
        recipient_id=patient,
        due_at=datetime(2026, 11, 30, 15, tzinfo=UTC),
        facts=ReminderFacts(session_number=1, subject_at=session_at),
    )


def sender(pool: asyncpg.Pool, channel: Channel, operations: Contact | None = None) -> NotificationActivities:
    return NotificationActivities(PostgresOutbox(pool), channel, PostgresContactDirectory(pool, operations), CLINIC)


async def outbox_row(pool: asyncpg.Pool, key: str) -> dict[str, object]:
    row = await pool.fetchrow(
        "SELECT status, channel, attempts, message_id, last_error, delivered_at FROM notifications "
        "WHERE idempotency_key = $1",
        key,
    )
    assert row is not None
    return dict(row)


async def test_the_patient_gets_the_session_reminder_by_mail_once(pg_pool: asyncpg.Pool, mailbox: Mailbox) -> None:
    patient = await a_patient(pg_pool)
    reminder = session_reminder(patient)
    activities, env = sender(pg_pool, smtp(mailbox, tls="none")), ActivityEnvironment()

    with capture_logs() as logs:
        first = await env.run(activities.send_notification, reminder)
        retried = await env.run(activities.send_notification, reminder)  # a retry, or a replayed course

    assert (first.delivered, first.status) == (True, DeliveryStatus.DELIVERED)
    assert (retried.delivered, retried.duplicate) == (False, True)
    assert len(mailbox.received) == 1
    mail = mailbox.received[0]
    assert mail["To"] == "jordan@example.org"
    assert mail["From"] == "Calm Harbor Clinic <reminders@calm.example>"
    assert mail["Subject"] == "Reminder: your appointment tomorrow at Calm Harbor Clinic"
    assert mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert body.startswith("Hello Jordan,")
    assert "Tuesday 1 December 2026 at 15:00 (Europe/London)" in body
    assert "must not drive" in body and "take you home" in body
    row = await outbox_row(pg_pool, reminder.idempotency_key)
    assert row["status"] == "delivered" and row["channel"] == "smtp" and row["attempts"] == 1
    assert row["message_id"] == mail["Message-ID"]
    # The address and the name were read at delivery time and went nowhere but the mail.
    assert "jordan@example.org" not in repr(logs) and "Jordan" not in repr(logs)


async def test_mail_goes_over_starttls_with_a_login_and_never_to_an_untrusted_server(
    pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    certificate = local_certificate(tmp_path)
    patient = await a_patient(pg_pool)
    env = ActivityEnvironment()
    with running_smtp(tls=certificate.server_context(), login=("relay-user", "s3cret")) as box:
        untrusted = sender(pg_pool, smtp(box, tls="starttls", username="relay-user", password="s3cret"))
        first = session_reminder(patient)
        with pytest.raises(ApplicationError) as refused:
            await env.run(untrusted.send_notification, first)
        assert not refused.value.non_retryable and box.received == []
        assert (await outbox_row(pg_pool, first.idempotency_key))["status"] == "failed"

        trusted = sender(
            pg_pool,
            smtp(
                box, tls="starttls", username="relay-user", password="s3cret", tls_context=certificate.client_context()
            ),
        )
        result = await env.run(trusted.send_notification, first)  # the retry, once the CA is configured
    assert result.delivered and len(box.received) == 1
    assert (await outbox_row(pg_pool, first.idempotency_key))["attempts"] == 2


async def test_a_relay_that_says_try_later_gets_the_reminder_on_the_retry(
    pg_pool: asyncpg.Pool, mailbox: Mailbox
) -> None:
    patient = await a_patient(pg_pool)
    reminder = session_reminder(patient)
    activities, env = sender(pg_pool, smtp(mailbox, tls="none")), ActivityEnvironment()
    mailbox.refuse("451 4.3.0 Mail server temporarily rejected message")

    with pytest.raises(ApplicationError) as later:
        await env.run(activities.send_notification, reminder)
    assert later.value.type == "DeliveryRefused" and not later.value.non_retryable
    assert (await outbox_row(pg_pool, reminder.idempotency_key))["last_error"] == "smtp_rcpt_451"

    assert (await env.run(activities.send_notification, reminder)).delivered
    assert len(mailbox.received) == 1
    assert (await outbox_row(pg_pool, reminder.idempotency_key))["attempts"] == 2


async def test_an_address_refused_for_good_or_missing_is_undeliverable_not_retried(
    pg_pool: asyncpg.Pool, mailbox: Mailbox
) -> None:
    activities, env = sender(pg_pool, smtp(mailbox, tls="none")), ActivityEnvironment()
    mailbox.refuse("550 5.1.1 No such user")
    refused = session_reminder(await a_patient(pg_pool))
    no_address = session_reminder(await a_patient(pg_pool, email=None))
    nobody = session_reminder("pt-not-in-the-directory")

    results = [await env.run(activities.send_notification, n) for n in (refused, no_address, nobody)]

    assert [r.status for r in results] == [DeliveryStatus.UNDELIVERABLE] * 3
    assert [(await outbox_row(pg_pool, n.idempotency_key))["last_error"] for n in (refused, no_address, nobody)] == [
        "smtp_rcpt_550",
        "no_address",
        "no_address",
    ]
    assert mailbox.received == []


async def test_staff_reminders_reach_the_therapist_and_the_operations_mailbox(
    pg_pool: asyncpg.Pool, mailbox: Mailbox
) -> None:
    therapist = f"th-{uuid.uuid4().hex[:6]}"
    await pg_pool.execute(
        "INSERT INTO staff_contacts (staff_id, email, display_name) VALUES ($1, $2, $3)",
        therapist,
        "cole@calm.example",
        "Th Cole",
    )
    course = f"course-{uuid.uuid4()}"
    due = datetime(2026, 11, 28, 9, tzinfo=UTC)
    integration = Notification(
        idempotency_key=f"{course}:integration-reminder-2",
        stream_id=course,
        purpose="integration_due",
        recipient="therapist",
        recipient_id=therapist,
        due_at=due,
        facts=ReminderFacts(session_number=2, subject_at=datetime(2026, 11, 25, 15, tzinfo=UTC)),
    )
    clearance = Notification(
        idempotency_key=f"{course}:clearance-pending",
        stream_id=course,
        purpose="clearance_pending",
        recipient="operations",
        recipient_id=None,
        due_at=due,
    )
    activities = sender(pg_pool, smtp(mailbox, tls="none"), operations=Contact(email="ops@calm.example"))
    for notification in (integration, clearance):
        assert (await ActivityEnvironment().run(activities.send_notification, notification)).delivered

    assert [to for _, to in mailbox.envelopes] == [["cole@calm.example"], ["ops@calm.example"]]
    therapist_mail, ops_mail = mailbox.received
    assert "integration session is due after dosing session 2" in therapist_mail.get_content()
    assert ops_mail["Subject"] == f"Course {course.removeprefix('course-')}: insurance verification waiting"


class LostAfterDelivery:
    """The relay accepted the message, then the connection (or the process) went away."""

    name = "smtp"

    def __init__(self, inner: SmtpChannel) -> None:
        self._inner = inner

    async def deliver(self, message: OutgoingMessage) -> None:
        await self._inner.deliver(message)
        raise ConnectionResetError("connection lost before the reply was read")


async def test_a_delivery_whose_outcome_is_unknown_is_never_sent_again(pg_pool: asyncpg.Pool, mailbox: Mailbox) -> None:
    reminder = session_reminder(await a_patient(pg_pool))
    env = ActivityEnvironment()
    flaky = sender(pg_pool, LostAfterDelivery(smtp(mailbox, tls="none")))
    steady = sender(pg_pool, smtp(mailbox, tls="none"))

    with capture_logs() as logs:
        first = await env.run(flaky.send_notification, reminder)
        retried = await env.run(steady.send_notification, reminder)

    assert first.status is DeliveryStatus.DELIVERY_UNCERTAIN and not first.delivered
    assert retried.status is DeliveryStatus.DELIVERY_UNCERTAIN and retried.duplicate
    assert len(mailbox.received) == 1
    row = await outbox_row(pg_pool, reminder.idempotency_key)
    assert row["status"] == "delivery_uncertain" and row["last_error"] == "ConnectionResetError"
    assert any(e["event"] == "notification delivery uncertain: not resent" for e in logs)


async def test_a_worker_killed_after_delivery_and_before_completion_sends_nothing_twice(
    dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool, pg_dsn: str, mailbox: Mailbox
) -> None:
    reminder = session_reminder(await a_patient(pg_pool))
    queue = task_queue()
    address = dev_env.client.service_client.config.target_host
    crashing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.crashing_worker", address, queue, pg_dsn, str(mailbox.port)
    )
    try:
        async with Worker(dev_env.client, task_queue=queue, workflows=[NotifyOnce]):
            handle = await dev_env.client.start_workflow(
                NotifyOnce.run, reminder, id=f"notify-{uuid.uuid4()}", task_queue=queue
            )
            # Attempt 1 runs in the subprocess: the relay accepts the mail, then SIGKILL.
            assert await asyncio.wait_for(crashing.wait(), timeout=60) == -9
            assert len(mailbox.received) == 1
            assert (await outbox_row(pg_pool, reminder.idempotency_key))["status"] == "sending"

            # Temporal retries after the start-to-close timeout, on a healthy worker.
            healthy = sender(pg_pool, smtp(mailbox, tls="none"))
            async with Worker(dev_env.client, task_queue=queue, activities=[healthy.send_notification]):
                result = await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        if crashing.returncode is None:
            crashing.kill()
            await crashing.wait()

    assert result.status is DeliveryStatus.DELIVERY_UNCERTAIN and result.duplicate
    assert len(mailbox.received) == 1  # one mail, whatever happened to the worker
    row = await outbox_row(pg_pool, reminder.idempotency_key)
    assert (row["status"], row["last_error"], row["attempts"]) == ("delivery_uncertain", "attempt_lost", 1)


async def test_temporal_retries_a_refused_delivery_until_it_lands_once(
    dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool, mailbox: Mailbox
) -> None:
    reminder = session_reminder(await a_patient(pg_pool))
    mailbox.refuse("421 4.7.0 Too many connections, try again", "451 4.3.2 System not accepting messages")
    queue = task_queue()
    activities = sender(pg_pool, smtp(mailbox, tls="none"))
    async with Worker(
        dev_env.client, task_queue=queue, workflows=[NotifyOnce], activities=[activities.send_notification]
    ):
        result = await dev_env.client.execute_workflow(
            NotifyOnce.run, reminder, id=f"notify-{uuid.uuid4()}", task_queue=queue
        )
    assert result.delivered and len(mailbox.received) == 1
    assert (await outbox_row(pg_pool, reminder.idempotency_key))["attempts"] == 3


async def test_a_late_recheck_reaches_the_nurse_on_duty_and_operations_without_one(pg_pool: asyncpg.Pool) -> None:
    """The chair-side room's row in staff_contacts when the clinic keeps one; operations' otherwise."""
    ops = Contact(email="ops@calm.example")
    directory = PostgresContactDirectory(pg_pool, operations=ops)
    assert await directory.contact_for("operations", NURSE_ON_DUTY) == ops
    await pg_pool.execute(
        "INSERT INTO staff_contacts (staff_id, email, display_name) VALUES ($1, $2, $3)",
        NURSE_ON_DUTY,
        "chair-room@calm.example",
        "Chair-side room",
    )
    try:
        assert (await directory.contact_for("operations", NURSE_ON_DUTY)).email == "chair-room@calm.example"  # type: ignore[union-attr]
        assert await directory.contact_for("operations", None) == ops  # every other operations message
    finally:
        await pg_pool.execute("DELETE FROM staff_contacts WHERE staff_id = $1", NURSE_ON_DUTY)
