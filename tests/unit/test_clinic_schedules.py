"""The clinic's Schedules as configured, and their digests as mailed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from activities.ports import Notification, ReminderFacts
from activities.templates import Clinic, render
from worker.schedules import HUDDLE_SCHEDULE, RECONCILE_SCHEDULE, BadScheduleSetting, identity, wanted
from worker.settings import Settings


def test_the_huddle_fires_at_the_clinics_local_time_and_the_reconciliation_hourly() -> None:
    schedules = wanted(Settings(huddle_at="06:45", clinic_time_zone="Europe/Lisbon", course_task_queue="q"))
    huddle, reconcile = schedules[HUDDLE_SCHEDULE], schedules[RECONCILE_SCHEDULE]
    calendar = huddle.spec.calendars[0]
    assert (calendar.hour[0].start, calendar.minute[0].start, huddle.spec.time_zone_name) == (6, 45, "Europe/Lisbon")
    assert reconcile.spec.intervals[0].every == timedelta(hours=1)
    # A new time is a different Schedule (updated in place); the same settings are the same one.
    assert identity(huddle) == identity(wanted(Settings(huddle_at="06:45", clinic_time_zone="Europe/Lisbon",
                                                        course_task_queue="q"))[HUDDLE_SCHEDULE])  # fmt: skip
    assert identity(huddle) != identity(wanted(Settings(huddle_at="07:00", clinic_time_zone="Europe/Lisbon",
                                                        course_task_queue="q"))[HUDDLE_SCHEDULE])  # fmt: skip


def test_a_huddle_time_or_zone_that_cannot_be_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(huddle_at="7:30pm")
    with pytest.raises(ValidationError):
        Settings(huddle_time_zone="Europe/Atlantis")
    with pytest.raises(BadScheduleSetting):
        wanted(Settings(clinic_time_zone="Mars/Olympus"))  # the clinic's zone, which the huddle falls back to


def test_a_digest_is_mailed_as_its_lines() -> None:
    lines = ["Today, Wednesday 02 December 2026 (Europe/Berlin)", "", "Reviews pending (1):", "  course c1  dr-ames"]
    message = render(
        Notification(
            idempotency_key="clinic-daily-huddle-2026-12-02T06:30:00Z:operations:team",
            stream_id="clinic-daily-huddle-2026-12-02T06:30:00Z",
            purpose="daily_huddle",
            recipient="operations",
            recipient_id=None,
            due_at=datetime(2026, 12, 2, 6, 30, tzinfo=UTC),
            facts=ReminderFacts(digest=lines),
        ),
        None,
        Clinic(time_zone="Europe/Berlin"),
    )
    assert message.subject.startswith("Today's huddle")
    assert message.body.startswith("\n".join(lines))
