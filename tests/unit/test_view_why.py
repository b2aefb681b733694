"""The course view says why: an ineligible course names its reading, a deferred session its reason,
a pending review and a hold theirs; the operations view keeps codes and no clinical words."""

from __future__ import annotations

from course.commands import PlaceHold, RecordClinicalReview, ReviewDecision, Withdraw
from course.view import operations_view, view
from tests import story
from tests.clinic import Clinic


def test_an_ineligible_course_says_why_in_words_and_its_assessment_is_done() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment(blood_pressure={"systolic": 170, "diastolic": 105}))
    course = view(clinic.course, clinic.now)
    assert (course.outcome, course.close_reasons) == ("ineligible", ["bp_above_threshold"])
    assert course.close_reasons_in_words == ["blood pressure 170/105 is at or above 160/100"]
    assessment = course.steps[0]
    assert (assessment.name, assessment.status, assessment.why) == ("assessment", "done", "ineligible")


def test_a_course_not_yet_assessed_still_waits_for_its_assessment() -> None:
    clinic = Clinic()
    course = view(clinic.course, clinic.now)
    assert (course.steps[0].status, course.steps[0].why) == ("pending", None)
    assert course.close_reasons_in_words == [] and course.deferred_sessions == []


def test_a_session_deferred_at_check_in_keeps_its_reason_and_reading() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.NURSE, story.check_in(1, vitals=story.HIGH))
    course = view(clinic.course, clinic.now)
    (deferred,) = course.deferred_sessions
    assert (deferred.session_number, deferred.reason, deferred.at) == (1, "bp_above_threshold", clinic.now)
    assert deferred.in_words == "blood pressure 170/104 is at or above 160/100"
    clinic.record(story.NURSE, story.check_in(1))  # the recheck is calm: the deferral stays on record
    assert len(view(clinic.course, clinic.now).deferred_sessions) == 1


def test_a_pending_review_says_why_until_the_prescriber_records_it() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1, patient_response="worse", side_effects=[{"effect": "nausea", "severity": "severe"}])
    course = view(clinic.course, clinic.now)
    assert course.review_reasons_in_words == ["the patient felt worse after the dose", "severe nausea"]
    clinic.record(
        story.PRESCRIBER, RecordClinicalReview(decision=ReviewDecision.CONTINUE, rationale="Settled by evening")
    )
    assert view(clinic.course, clinic.now).review_reasons_in_words == []


def test_a_hold_and_a_withdrawal_say_their_reasons() -> None:
    clinic = Clinic()
    clinic.record(story.OPERATIONS, PlaceHold(reason="patient_travel"))
    assert view(clinic.course, clinic.now).hold_reason_in_words == "the patient is travelling"
    clinic.record(story.OPERATIONS, Withdraw(reason="patient_request"))
    course = view(clinic.course, clinic.now)
    assert course.hold_reason_in_words is None
    assert course.close_reasons_in_words == ["the patient asked to stop"]


def test_the_next_reminder_is_named_beside_the_next_deadline() -> None:
    clinic = Clinic(insurance=None)  # no payer's answer yet: no clearance reminder
    course = view(clinic.course, clinic.now)
    assert course.next_reminder is not None and course.next_due is not None
    assert course.next_reminder.what == "reminder: assessment not yet recorded"
    assert course.next_reminder.at == clinic.now + clinic.course.policy.assessment_reminder_after
    assert operations_view(course).next_reminder == course.next_reminder


def test_the_operations_view_has_no_clinical_words() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment(blood_pressure={"systolic": 170, "diastolic": 105}))
    ops = operations_view(view(clinic.course, clinic.now))
    text = ops.model_dump_json()
    assert "170" not in text and "blood pressure" not in text and "in_words" not in text
    assert not {"close_reasons_in_words", "deferred_sessions", "review_reasons_in_words"} & set(ops.model_dump())
    assert ops.outcome == "ineligible"  # operations keep the code
