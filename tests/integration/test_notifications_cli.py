"""`course notifications` and `course dashboard`: what was sent, when, how, and what needs follow-up,
read through the API as the token's owner; `--resend` acts on the outbox directly."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.channels import MemoryChannel
from activities.contacts import StaticContactDirectory
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import Contact, DeliveryRefused, Notification, OutgoingMessage
from cli import notifications_cmd
from tests.integration.staff_cli import Cli
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


async def _opened(cli: Cli, patient: str, clinician: str = "dr-ames") -> str:
    opened = await cli(
        "open", "--patient", patient, "--clinician", clinician, "--self-pay", "--json", role="operations"
    )
    assert opened.code == 0, opened.err
    return str(opened.json()["course_id"])


async def _reads(pg_pool: asyncpg.Pool, course: str) -> list[tuple[str, str, str]]:
    rows = await pg_pool.fetch(
        "SELECT staff_id, what, channel FROM access_log WHERE course_id = $1 ORDER BY id", uuid.UUID(course)
    )
    return [(r["staff_id"], r["what"], r["channel"]) for r in rows]


async def test_notifications_are_read_through_the_api_as_the_tokens_owner_and_recorded(
    cli: Cli, pg_pool: asyncpg.Pool
) -> None:
    """The course's prescriber and operations read its notifications; a nurse outside the nurse
    phases is refused (exit 4); across courses is for operations; each read is in the access log."""
    course_id = await _opened(cli, "pt-notify-1")
    course = f"course-{course_id}"
    contacts = StaticContactDirectory(patients={"pt-77": Contact(email="sam@example.org")})
    delivered = NotificationActivities(PostgresOutbox(pg_pool), MemoryChannel(), contacts)
    refused = NotificationActivities(PostgresOutbox(pg_pool), RefusesEveryone(), contacts)
    env = ActivityEnvironment()
    await env.run(delivered.send_notification, reminder(course, "assessment_pending", "clinician", "dr-ames", 2))
    await env.run(refused.send_notification, reminder(course, "maintenance_due", "patient", "pt-77", 3))

    mine = await cli("notifications", course_id, "--json", member="dr-ames")
    assert mine.code == 0, mine.err
    rows = [r for r in mine.json() if r["due_at"].startswith("2026-11")]  # not the course's own reminders
    assert [(r["purpose"], r["recipient"], r["channel"], r["status"]) for r in rows] == [
        ("assessment_pending", "clinician", "memory", "delivered"),
        ("maintenance_due", "patient", "smtp", "undeliverable"),
    ]
    assert rows[0]["delivered_at"] and rows[0]["message_id"] and not rows[0]["needs_attention"]
    assert rows[1]["error"] == "smtp_rcpt_550" and rows[1]["needs_attention"]
    assert "sam@example.org" not in mine.out and "pt-77" not in mine.out

    text = await cli("notifications", course_id, role="operations")
    assert text.code == 0, text.err
    assert "assessment_pending" in text.out and "undeliverable (smtp_rcpt_550) !" in text.out
    assert text.out.splitlines()[0].split() == ["DUE", "(UTC)", "PURPOSE", "TO", "CHANNEL", "STATUS", "SENT", "(UTC)",
                                               "ATTEMPTS"]  # fmt: skip
    followed = await cli("notifications", course_id, "--attention", "--json", role="operations")
    assert [r["purpose"] for r in followed.json()] == ["maintenance_due"]

    nurse = await cli("notifications", course_id, role="nurse")  # the course is in assessment
    assert nurse.code == 4 and "break_glass_required" in nurse.err, nurse.err
    across = await cli("notifications", "--attention", "--json", role="operations")
    assert across.code == 0, across.err
    assert [r["course_id"] for r in across.json()].count(course_id) == 1
    assert all(r["needs_attention"] for r in across.json())
    assert (await cli("notifications", role="nurse")).code == 4  # across courses: operations only

    assert await _reads(pg_pool, course_id) == [
        ("dr-ames", "notifications", "api"),
        ("staff-operations", "notifications", "api"),
        ("staff-operations", "notifications", "api"),
        ("staff-operations", "notifications", "api"),
    ]


async def test_an_unknown_course_is_reported_as_such(cli: Cli) -> None:
    missing = await cli("notifications", str(uuid.uuid4()), role="operations")
    assert missing.code == 3, missing.err
    assert (await cli("notifications", "not-a-course", role="operations")).code == 3


async def test_the_dashboard_counts_the_courses_its_reader_reads(cli: Cli) -> None:
    """Operations count every open course; a prescriber their care team's; a nurse only the nurse
    phases (never a course in assessment); a clinic admin reads none (exit 4)."""
    await _opened(cli, "pt-dash-1", clinician="dr-dash")

    async def board(**who: str) -> dict[str, Any]:
        result = await cli("dashboard", "--json", **who)
        assert result.code == 0, result.err
        answer: dict[str, Any] = result.json()
        return answer

    deadline = asyncio.get_running_loop().time() + 30
    while (await board(member="dr-dash"))["open_courses_by_phase"]["assessment"] != 1:  # visibility lags
        assert asyncio.get_running_loop().time() < deadline, "the course never reached the dashboard"
        await asyncio.sleep(0.2)
    assert (await board(role="operations"))["open_courses_by_phase"]["assessment"] >= 1
    assert (await board(role="nurse"))["open_courses_by_phase"]["assessment"] == 0
    text = await cli("dashboard", member="dr-dash")
    assert "open courses by phase:" in text.out and "assessment   1" in text.out
    admin = await cli("dashboard", role="clinic_admin")
    assert admin.code == 4 and "clinic_admin_reads_no_course" in admin.err


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
