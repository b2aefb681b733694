"""What the course page offers first, and what a step's form starts with, read from the view."""

from __future__ import annotations

from course.commands import RecordClinicalReview, Role
from course.offers import next_session, offered_steps, prefill
from course.view import operations_view, view
from tests import story
from tests.clinic import Clinic


def test_in_preparation_a_nurse_is_offered_what_the_course_awaits_and_not_a_second_assessment() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment())
    offered = offered_steps(view(clinic.course, clinic.now), Role.NURSE)
    assert offered.now == ["intentions", "consent", "support-person", "orientation", "financial-clearance"]
    assert "assessment" not in offered.now + offered.other  # not hers, and done
    assert "dosing-plan" not in offered.now  # the prescriber's
    assert "check-in" in offered.other and "hold" in offered.other


def test_one_off_steps_once_done_are_not_offered_again() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    prescriber = offered_steps(view(clinic.course, clinic.now), Role.PRESCRIBER)
    shown = prescriber.now + prescriber.other
    for done in ("assessment", "consent", "dosing-plan", "financial-clearance", "prior-authorization"):
        assert done not in shown, done
    assert prescriber.now == ["check-in"]
    assert "intentions" in prescriber.other  # goals may be written again: not a one-off


def test_operations_are_offered_only_their_steps_from_the_operations_view() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    offered = offered_steps(operations_view(view(clinic.course, clinic.now)), Role.OPERATIONS)
    assert "check-in" not in offered.now + offered.other
    assert "schedule-session" in offered.other


def test_the_forms_start_at_the_session_the_course_is_at_with_the_plans_route_and_dose() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    course = view(clinic.course, clinic.now)
    assert prefill("schedule-session", course) == {"session_number": "1"}
    assert prefill("check-in", course) == {"session_number": "1"}
    assert prefill("dosing-session", course) == {"session_number": "1", "route": "iv_infusion", "dose_mg_per_kg": "0.5"}
    assert prefill("consent", course) == {}
    # Operations never see the route or dose, so their form does not either.
    assert prefill("dosing-session", operations_view(course)) == {"session_number": "1"}


def test_after_a_review_lowers_the_dose_the_next_session_starts_at_the_new_dose() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1, patient_response="worse")
    review = RecordClinicalReview(decision="adjust_dose", new_dose_mg_per_kg=0.4, rationale="lower")
    clinic.record(story.PRESCRIBER, review)
    course = view(clinic.course, clinic.now)
    assert course.dose_mg_per_kg == 0.4
    assert prefill("dosing-session", course) == {"session_number": "2", "route": "iv_infusion", "dose_mg_per_kg": "0.4"}


def test_past_the_last_planned_session_no_session_number_is_offered() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    course = view(clinic.course, clinic.now)
    assert next_session(course) is None and "session_number" not in prefill("check-in", course)


def test_an_older_workers_view_without_the_dose_still_reads() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    older = view(clinic.course, clinic.now).model_dump(mode="json")
    del older["dose_mg_per_kg"]
    course = type(view(clinic.course, clinic.now)).model_validate(older)
    assert course.dose_mg_per_kg is None and prefill("dosing-session", course)["route"] == "iv_infusion"
