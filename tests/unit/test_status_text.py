"""`course status` as a person reads it: why in words for the care team, codes for operations,
every time with its zone."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from cli.main import status_text
from course.commands import PlaceHold
from course.view import operations_view, view
from tests import story
from tests.clinic import Clinic


def test_a_deferred_session_and_a_pending_review_are_said_in_words_with_times_in_the_clinics_zone() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.NURSE, story.check_in(1, vitals=story.HIGH))
    deferred_at = clinic.now.astimezone(ZoneInfo("Europe/Berlin"))
    clinic.dose(1, patient_response="worse")
    lines = status_text(view(clinic.course, clinic.now), ZoneInfo("Europe/Berlin")).splitlines()
    assert (
        f"  session 1 deferred {deferred_at:%Y-%m-%d %H:%M} Europe/Berlin: "
        "blood pressure 170/104 is at or above 160/100" in lines
    )
    assert "  review needed before the next dose: the patient felt worse after the dose" in lines


def test_a_hold_and_the_next_reminder_are_named_and_operations_read_no_clinical_words() -> None:
    clinic = Clinic(insurance=None)
    course = view(clinic.course, clinic.now)
    reminder = course.next_reminder
    assert reminder is not None
    text = status_text(course, UTC)
    assert f"  next reminder: assessment not yet recorded at {reminder.at:%Y-%m-%d %H:%M} UTC" in text.splitlines()
    clinic.record(story.OPERATIONS, PlaceHold(reason="payment_pending"))
    assert "  on hold: payment is pending" in status_text(view(clinic.course, clinic.now), UTC).splitlines()
    clinic.record(story.PRESCRIBER, story.assessment(blood_pressure={"systolic": 165, "diastolic": 90}))
    ops = status_text(operations_view(view(clinic.course, clinic.now)), UTC)
    assert "closed (ineligible)" in ops and "blood pressure" not in ops and "165" not in ops
