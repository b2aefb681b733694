"""`course notifications`: operations see what was sent, when, how, and what needs their follow-up."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.channels import MemoryChannel
from activities.contacts import StaticContactDirectory
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import Contact, DeliveryRefused, Notification, OutgoingMessage
from application.courses import CourseNotFound
from cli import notifications_cmd
from worker.settings import Settings

pytestmark = pytest.mark.integration


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="course")
    notifications_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["notifications", *argv])


def reminder(course: str, purpose: str, recipient: str, recipient_id: str | None, day: int) -> Notification:
    return Notification(
        idempotency_key=f"{course}:{purpose}-{day}",
        stream_id=course,
        purpose=purpose,
        recipient=recipient,  # type: ignore[arg-type]
        recipient_id=recipient_id,
        due_at=datetime(2026, 11, day, 9, tzinfo=UTC),
    )


class RefusesEveryone:
    name = "smtp"

    async def deliver(self, message: OutgoingMessage) -> None:
        raise DeliveryRefused("smtp_rcpt_550", permanent=True)


async def test_operations_list_a_courses_notifications_and_what_needs_follow_up(
    pg_pool: asyncpg.Pool, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    course_id = str(uuid.uuid4())
    course = f"course-{course_id}"
    contacts = StaticContactDirectory(patients={"pt-77": Contact(email="sam@example.org")})
    delivered = NotificationActivities(PostgresOutbox(pg_pool), MemoryChannel(), contacts)
    refused = NotificationActivities(PostgresOutbox(pg_pool), RefusesEveryone(), contacts)
    env = ActivityEnvironment()
    await env.run(delivered.send_notification, reminder(course, "assessment_pending", "clinician", "dr-ames", 2))
    await env.run(refused.send_notification, reminder(course, "maintenance_due", "patient", "pt-77", 3))
    settings = Settings(database_url=pg_dsn)
    capsys.readouterr()  # the activities' log lines

    assert await notifications_cmd.run(parse(course_id, "--json"), settings) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["purpose"], r["recipient"], r["channel"], r["status"]) for r in rows] == [
        ("assessment_pending", "clinician", "memory", "delivered"),
        ("maintenance_due", "patient", "smtp", "undeliverable"),
    ]
    assert rows[0]["delivered_at"] and rows[0]["message_id"] and not rows[0]["needs_attention"]
    assert rows[1]["error"] == "smtp_rcpt_550" and rows[1]["needs_attention"]
    assert "sam@example.org" not in json.dumps(rows) and "pt-77" not in json.dumps(rows)

    assert await notifications_cmd.run(parse(course_id), settings) == 0
    text = capsys.readouterr().out
    assert "assessment_pending" in text and "undeliverable (smtp_rcpt_550) !" in text

    assert await notifications_cmd.run(parse("--attention", "--json"), settings) == 0
    attention = json.loads(capsys.readouterr().out)
    assert [r["course_id"] for r in attention].count(course_id) == 1
    assert all(r["needs_attention"] for r in attention)


async def test_an_unknown_course_is_reported_as_such(pg_dsn: str) -> None:
    with pytest.raises(CourseNotFound):
        await notifications_cmd.run(parse(str(uuid.uuid4())), Settings(database_url=pg_dsn))
    with pytest.raises(CourseNotFound):
        await notifications_cmd.run(parse("not-a-course"), Settings(database_url=pg_dsn))


async def test_operations_resend_an_undeliverable_reminder_once_the_address_is_fixed(
    pg_pool: asyncpg.Pool, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    course = f"course-{uuid.uuid4()}"
    notification = reminder(course, "maintenance_due", "patient", "pt-78", 4)
    contacts = StaticContactDirectory(patients={"pt-78": Contact(email="wrong@example.org")})
    await ActivityEnvironment().run(
        NotificationActivities(PostgresOutbox(pg_pool), RefusesEveryone(), contacts).send_notification, notification
    )
    # The fixed address is in the contact table the CLI's directory reads, as in production.
    await pg_pool.execute(
        "INSERT INTO patient_contacts (patient_id, email) VALUES ($1, $2) ON CONFLICT (patient_id) "
        "DO UPDATE SET email = EXCLUDED.email",
        "pt-78",
        "sam@example.org",
    )
    settings = Settings(database_url=pg_dsn, notify_channel="console")
    key = notification.idempotency_key
    capsys.readouterr()

    assert await notifications_cmd.run(parse("--resend", key, "--json"), settings) == 0
    out = capsys.readouterr().out  # the console channel's log line first (stderr once logging is configured)
    assert json.loads(out[out.index("{\n") :]) == {"key": key, "status": "delivered", "error": None}
    assert await notifications_cmd.run(parse("--resend", key), settings) == 2
    assert "delivered" in capsys.readouterr().err
