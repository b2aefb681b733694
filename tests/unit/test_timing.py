"""Timers as the clinic experiences them: reminders, overdue flags and lapses, once each."""

from __future__ import annotations

from datetime import timedelta, timezone

from course.commands import InsuranceStatus, PlaceHold, ReleaseHold, ScheduleSession
from course.state import Phase
from course.timing import next_due, next_for_staff, pending
from tests import story
from tests.clinic import Clinic


def test_an_unassessed_course_gets_a_reminder_at_7_days_and_lapses_at_30() -> None:
    clinic = Clinic(insurance=InsuranceStatus.COVERED)
    assert clinic.advance(days=6) == []
    assert clinic.advance(days=1) == ["ReminderSent"]
    assert clinic.advance(days=1) == []
    assert clinic.advance(days=22) == ["CourseClosed"]
    assert clinic.course.outcome == "lapsed"


def test_a_stalled_preparation_is_reminded_then_lapses() -> None:
    clinic = Clinic(insurance=InsuranceStatus.COVERED)
    clinic.record(story.PRESCRIBER, story.assessment())
    assert clinic.advance(days=14) == ["ReminderSent"]
    assert clinic.advance(days=46) == ["CourseClosed"]
    assert clinic.course.close_reasons == ["preparation_deadline"]


def test_time_on_hold_does_not_count_towards_a_lapse() -> None:
    clinic = Clinic()
    clinic.advance(days=20)
    clinic.record(story.OPERATIONS, PlaceHold(reason="patient_travel"))
    assert clinic.advance(days=40) == []
    clinic.record(story.OPERATIONS, ReleaseHold())
    assert clinic.advance(days=5) == []
    assert clinic.course.phase is Phase.ASSESSMENT
    assert clinic.advance(days=5) == ["CourseClosed"]


def test_the_patient_is_reminded_the_day_before_a_session() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, story.soon(clinic.now, days=3)))
    assert clinic.advance(days=1) == []
    assert clinic.advance(days=1) == ["ReminderSent"]
    reminder = clinic.log[-1].event
    assert reminder.type == "ReminderSent" and reminder.recipient == "patient"
    assert clinic.advance(hours=23) == []


def test_the_same_appointment_sent_in_two_utc_offsets_reminds_the_patient_once() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    appointment = story.soon(clinic.now, days=3)
    in_paris = appointment.astimezone(timezone(timedelta(hours=1)))
    clinic.record(story.OPERATIONS, story.schedule(1, in_paris))
    assert clinic.advance(days=2) == ["ReminderSent"]
    # The front desk's tablet sends the same appointment again, in UTC ("Z").
    clinic.record(story.OPERATIONS, ScheduleSession.model_validate_json(
        f'{{"session_number": 1, "scheduled_at": "{appointment.strftime("%Y-%m-%dT%H:%M:%SZ")}"}}'
    ))  # fmt: skip
    assert clinic.advance(hours=1) == []
    assert [e.event.type for e in clinic.log].count("ReminderSent") == 1
    assert clinic.course.scheduled[1].utcoffset() == timedelta(0)


def test_a_reminder_fired_under_a_key_with_a_caller_offset_is_not_sent_again() -> None:
    # Courses recorded before times were normalised hold keys like `...T10:00:00+01:00`.
    clinic = Clinic()
    clinic.through_preparation()
    appointment = story.soon(clinic.now, days=3)
    clinic.record(story.OPERATIONS, story.schedule(1, appointment))
    (reminder,) = [item for item in pending(clinic.course, clinic.now) if item.key.startswith("session-1")]
    assert reminder.key == f"session-1-reminder-{appointment.isoformat()}"  # UTC keys are unchanged
    legacy = f"session-1-reminder-{appointment.astimezone(timezone(timedelta(hours=1))).isoformat()}"
    clinic.state = clinic.course.model_copy(update={"fired": [*clinic.course.fired, legacy]})
    assert clinic.advance(days=2) == []


def test_an_integration_session_is_due_within_a_week_of_each_dose() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    assert clinic.advance(days=3) == ["ReminderSent"]
    assert clinic.advance(days=4) == ["FollowUpOverdue"]
    assert clinic.course.overdue == ["integration-overdue-1"]
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    assert clinic.course.overdue == []


def test_an_integration_session_in_time_cancels_the_follow_up() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    clinic.advance(days=1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    assert clinic.advance(days=10) == []


def test_maintenance_is_reminded_before_it_is_due_and_flagged_after_the_grace() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    clinic.record(story.PRESCRIBER, story.maintenance_plan(interval_days=90))
    assert clinic.advance(days=75) == []
    assert clinic.advance(days=1) == ["ReminderSent"]
    assert clinic.advance(days=43) == []
    assert clinic.advance(days=1) == ["MaintenanceOverdue", "ReminderSent"]
    clinic.record(story.NURSE, story.maintenance_session(clinic.now))
    assert clinic.course.overdue == []


def test_a_hold_after_a_dose_postpones_the_integration_follow_up() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    clinic.advance(days=1)
    clinic.record(story.OPERATIONS, PlaceHold(reason="patient_travel"))
    assert clinic.advance(days=17) == []
    clinic.record(story.OPERATIONS, ReleaseHold())
    assert clinic.advance(days=1) == []  # not overdue for time the clinic said to wait
    assert clinic.advance(days=1) == ["ReminderSent"]
    assert clinic.advance(days=4) == ["FollowUpOverdue"]


def test_operations_hear_when_financial_clearance_waits_more_than_3_days() -> None:
    clinic = Clinic(insurance=InsuranceStatus.UNKNOWN)
    clinic.record(story.PRESCRIBER, story.assessment())
    assert clinic.advance(days=2) == []
    assert clinic.advance(days=1) == ["ReminderSent"]
    reminder = clinic.log[-1].event
    assert reminder.type == "ReminderSent" and reminder.recipient == "operations"
    assert reminder.purpose == "clearance_pending"


def test_a_covered_patient_triggers_no_clearance_reminder() -> None:
    clinic = Clinic(insurance=InsuranceStatus.COVERED)
    clinic.record(story.PRESCRIBER, story.assessment())
    assert clinic.advance(days=5) == []


def test_what_staff_are_next_asked_for_leaves_out_the_patients_reminders() -> None:
    clinic = Clinic(insurance=InsuranceStatus.COVERED)
    clinic.record(story.PRESCRIBER, story.assessment())
    clinic.record(story.OPERATIONS, story.schedule(1, story.soon(clinic.now, days=2)))
    # The patient's reminder the day before comes first; the clinician's preparation reminder is
    # what staff are asked for next (NextDueAt).
    first, staff = next_due(clinic.course, clinic.now), next_for_staff(clinic.course, clinic.now)
    assert first is not None and first.recipient == "patient" and first.purpose == "session_tomorrow"
    assert staff is not None and staff.purpose == "preparation_stalled" and staff.at > first.at


def test_a_course_waiting_only_on_a_patients_reminder_asks_nothing_of_staff() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, story.soon(clinic.now, days=3)))
    assert next_due(clinic.course, clinic.now) is not None
    assert next_for_staff(clinic.course, clinic.now) is None
