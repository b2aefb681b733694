"""Timers as the clinic experiences them: reminders, overdue flags and lapses, once each."""

from __future__ import annotations

from course.commands import InsuranceStatus, PlaceHold, ReleaseHold
from course.state import Phase
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
