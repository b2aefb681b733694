"""The clinic's rules, one story each: given these facts, when a clinician records a step, then..."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.commands import (
    Actor,
    Contraindication,
    InsuranceStatus,
    PlaceHold,
    RecordClinicalReview,
    RecordConsent,
    RecordEligibility,
    RecordPriorAuthorization,
    ReleaseHold,
    Withdraw,
)
from course.decider import decide
from course.errors import RuleViolation
from course.events import HoldPlaced
from course.policy import CoursePolicy
from course.state import Phase
from course.view import view
from tests import story
from tests.clinic import Clinic


def test_an_unremarkable_assessment_confirms_candidacy_and_opens_preparation() -> None:
    clinic = Clinic()
    assert clinic.record(story.PRESCRIBER, story.assessment()) == ["AssessmentRecorded", "CandidacyConfirmed"]
    assert clinic.course.phase is Phase.PREPARATION
    assert clinic.course.gad7_baseline == 15


@pytest.mark.parametrize("contraindication", ["psychotic_disorder", "uncontrolled_hypertension"])
def test_an_absolute_contraindication_closes_the_course_as_ineligible(contraindication: str) -> None:
    clinic = Clinic()
    events = clinic.record(story.PRESCRIBER, story.assessment(contraindications=[contraindication]))
    assert events == ["AssessmentRecorded", "CourseClosed"]
    assert clinic.course.outcome == "ineligible"
    assert clinic.course.close_reasons == [contraindication]


@pytest.mark.parametrize(("systolic", "diastolic"), [(160, 90), (150, 100), (185, 110)])
def test_a_reading_at_or_above_the_threshold_is_ineligible(systolic: int, diastolic: int) -> None:
    clinic = Clinic()
    bp = {"systolic": systolic, "diastolic": diastolic}
    clinic.record(story.PRESCRIBER, story.assessment(blood_pressure=bp))
    assert clinic.course.outcome == "ineligible"
    assert "bp_above_threshold" in clinic.course.close_reasons


def test_a_reading_just_under_the_threshold_is_eligible() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment(blood_pressure={"systolic": 159, "diastolic": 99}))
    assert clinic.course.phase is Phase.PREPARATION


def test_a_relative_contraindication_needs_the_prescribers_rationale() -> None:
    clinic = Clinic()
    rejected = clinic.rejects(story.PRESCRIBER, story.assessment(contraindications=["pregnancy"]))
    assert rejected.code == "rationale_required"
    assert "pregnancy" in rejected.message
    clinic.record(
        story.PRESCRIBER,
        story.assessment(
            contraindications=[Contraindication.HEPATIC_IMPAIRMENT],
            relative_contraindication_rationale="LFTs normal for six months",
        ),
    )
    assert clinic.course.relative_contraindications == [Contraindication.HEPATIC_IMPAIRMENT]


def test_only_a_prescriber_confirms_candidacy() -> None:
    clinic = Clinic()
    assert clinic.rejects(story.NURSE, story.assessment()).code == "role_not_permitted"


def test_preparation_steps_wait_for_the_assessment() -> None:
    clinic = Clinic()
    consent = RecordConsent(form_version="2026-01", signed_at=clinic.now)
    assert clinic.rejects(story.NURSE, consent).code == "assessment_first"


def test_an_outdated_consent_form_is_rejected_naming_the_current_version() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment())
    rejected = clinic.rejects(story.NURSE, RecordConsent(form_version="2025-06", signed_at=clinic.now))
    assert rejected.code == "consent_outdated"
    assert "2026-01" in rejected.message


def test_preparation_completes_when_the_last_piece_arrives_in_any_order() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment())
    steps = story.preparation(clinic.now)
    for actor, command in reversed(steps[1:]):
        assert "PreparationCompleted" not in clinic.record(actor, command)  # type: ignore[arg-type]
    actor, clearance = steps[0]
    assert clinic.record(actor, clearance)[-1] == "PreparationCompleted"  # type: ignore[arg-type]
    assert clinic.course.phase is Phase.DOSING


def test_the_first_dose_is_refused_listing_what_is_missing() -> None:
    clinic = Clinic()
    clinic.record(story.PRESCRIBER, story.assessment())
    rejected = clinic.rejects(story.NURSE, story.check_in(1))
    assert rejected.code == "preparation_incomplete"
    for missing in ("intentions", "consent", "support-person", "dosing-plan", "orientation", "financial-clearance"):
        assert missing in rejected.message


def test_a_payer_requiring_authorization_needs_an_approved_reference() -> None:
    clinic = Clinic(insurance=InsuranceStatus.PRIOR_AUTH_REQUIRED)
    clinic.record(story.PRESCRIBER, story.assessment())
    for actor, command in story.preparation(clinic.now)[1:]:
        clinic.record(actor, command)  # type: ignore[arg-type]
    assert clinic.course.phase is Phase.PREPARATION
    clinic.record(story.OPERATIONS, RecordPriorAuthorization(reference="PA-1", approved=False))
    assert clinic.course.phase is Phase.PREPARATION
    events = clinic.record(story.OPERATIONS, RecordPriorAuthorization(reference="PA-2", approved=True))
    assert events == ["PriorAuthorizationRecorded", "PreparationCompleted"]


def test_a_covered_patient_needs_no_financial_step() -> None:
    clinic = Clinic(insurance=InsuranceStatus.COVERED)
    clinic.record(story.PRESCRIBER, story.assessment())
    for actor, command in story.preparation(clinic.now)[1:]:
        clinic.record(actor, command)  # type: ignore[arg-type]
    assert clinic.course.phase is Phase.DOSING


def test_check_in_without_a_ride_home_is_refused() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    rejected = clinic.rejects(story.NURSE, story.check_in(1, ride_home=False))
    assert rejected.code == "no_ride_home"
    assert "must not drive" in rejected.message


def test_a_high_pre_dose_reading_defers_the_session_and_never_administers() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    assert clinic.record(story.NURSE, story.check_in(1, vitals=story.HIGH)) == ["DosingSessionDeferred"]
    assert clinic.rejects(story.NURSE, story.dose(1)).code == "not_checked_in"
    assert clinic.course.sessions_completed == 0
    assert clinic.record(story.NURSE, story.check_in(1)) == ["CheckedIn"]


def test_sessions_go_in_order() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    assert clinic.rejects(story.NURSE, story.check_in(2)).code == "session_out_of_order"


def test_route_and_dose_must_follow_the_plan() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.NURSE, story.check_in(1))
    assert clinic.rejects(story.NURSE, story.dose(1, route="intranasal")).code == "route_mismatch"
    assert clinic.rejects(story.NURSE, story.dose(1, dose_mg_per_kg=1.5)).code == "dose_above_limit"


@pytest.mark.parametrize(
    "changes",
    [
        {"patient_response": "worse"},
        {"side_effects": [{"effect": "dissociation", "severity": "severe"}]},
    ],
)
def test_a_worse_patient_or_severe_effect_stops_dosing_until_a_prescriber_reviews(
    changes: dict[str, object],
) -> None:
    clinic = Clinic()
    clinic.through_preparation()
    assert "ClinicalReviewRequired" in clinic.dose(1, **changes)
    assert clinic.rejects(story.NURSE, story.check_in(2)).code == "review_required"
    review = RecordClinicalReview(decision="adjust_dose", new_dose_mg_per_kg=0.4, rationale="lower")
    assert clinic.rejects(story.NURSE, review).code == "role_not_permitted"
    clinic.record(story.PRESCRIBER, review)
    assert clinic.course.current_dose_mg_per_kg == 0.4
    assert clinic.record(story.NURSE, story.check_in(2)) == ["CheckedIn"]


def test_a_review_can_end_dosing_or_close_the_course() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1, patient_response="worse")
    events = clinic.record(story.PRESCRIBER, RecordClinicalReview(decision="end_dosing", rationale="r"))
    assert events == ["ClinicalReviewRecorded", "DosingSeriesCompleted"]
    assert clinic.course.phase is Phase.INTEGRATION


def test_the_last_planned_session_completes_the_series() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=2)
    clinic.dose(1)
    assert clinic.dose(2)[-1] == "DosingSeriesCompleted"
    assert clinic.course.phase is Phase.INTEGRATION


def test_a_maintenance_plan_needs_a_post_series_integration_session() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    assert clinic.rejects(story.PRESCRIBER, story.maintenance_plan()).code == "integration_required"
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    assert clinic.rejects(story.PRESCRIBER, story.maintenance_plan(interval_days=10)).code == "interval_out_of_range"
    clinic.record(story.PRESCRIBER, story.maintenance_plan())
    assert clinic.course.phase is Phase.MAINTENANCE


def test_no_maintenance_completes_the_course() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    events = clinic.record(story.PRESCRIBER, story.maintenance_plan(kind="none", interval_days=None))
    assert events == ["MaintenancePlanRecorded", "CourseClosed"]
    assert clinic.course.outcome == "completed"


def test_a_high_maintenance_gad7_sets_needs_review() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    clinic.record(story.PRESCRIBER, story.maintenance_plan())
    clinic.record(story.NURSE, story.maintenance_session(clinic.now, gad7=11))
    assert clinic.course.needs_review


def test_a_closed_course_accepts_nothing_and_says_why() -> None:
    clinic = Clinic()
    clinic.record(story.OPERATIONS, Withdraw(reason="patient_request"))
    rejected = clinic.rejects(story.PRESCRIBER, story.assessment())
    assert rejected.code == "course_closed"
    assert "withdrawn" in rejected.message


def test_a_hold_pauses_dosing_until_released() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, PlaceHold(reason="patient_travel"))
    assert clinic.rejects(story.NURSE, story.check_in(1)).code == "on_hold"
    assert clinic.rejects(story.OPERATIONS, PlaceHold(reason="again")).code == "already_on_hold"
    clinic.record(story.OPERATIONS, ReleaseHold())
    assert clinic.record(story.NURSE, story.check_in(1)) == ["CheckedIn"]


@pytest.mark.parametrize("clinician", [story.PRESCRIBER, story.NURSE, story.THERAPIST])
def test_a_hold_a_clinician_placed_is_released_only_by_a_clinician(clinician: Actor) -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(clinician, PlaceHold(reason="bp_recheck"))
    assert clinic.course.hold_clinical
    refused = clinic.rejects(story.OPERATIONS, ReleaseHold())
    assert refused.code == "clinical_hold"
    assert "only a clinician (nurse, prescriber, therapist)" in refused.message
    other = story.NURSE if clinician is not story.NURSE else story.THERAPIST
    assert clinic.record(other, ReleaseHold()) == ["HoldReleased"]
    assert not clinic.course.on_hold and not clinic.course.hold_clinical


def test_a_hold_operations_placed_is_released_by_anyone_who_may_release() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, PlaceHold(reason="payment_pending"))
    assert not clinic.course.hold_clinical
    assert clinic.record(story.NURSE, ReleaseHold()) == ["HoldReleased"]
    clinic.record(story.OPERATIONS, PlaceHold(reason="patient_travel"))
    assert clinic.record(story.OPERATIONS, ReleaseHold()) == ["HoldReleased"]


def test_a_hold_stored_before_holds_said_who_placed_them_stays_releasable_by_operations() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    stored = HoldPlaced.model_validate({"type": "HoldPlaced", "reason": "patient_travel"})
    clinic._append([stored], story.NURSE)
    assert clinic.record(story.OPERATIONS, ReleaseHold()) == ["HoldReleased"]


def test_operations_staff_cannot_record_clinical_findings() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    assert clinic.rejects(story.OPERATIONS, story.check_in(1)).code == "role_not_permitted"


def test_a_late_eligibility_answer_for_a_closed_course_is_ignored() -> None:
    clinic = Clinic(insurance=None)
    clinic.record(story.OPERATIONS, Withdraw(reason="patient_request"))
    assert clinic.record(story.OPERATIONS, RecordEligibility(status=InsuranceStatus.COVERED)) == []


def test_eligibility_is_recorded_once() -> None:
    clinic = Clinic(insurance=InsuranceStatus.COVERED)
    assert clinic.record(story.OPERATIONS, RecordEligibility(status=InsuranceStatus.NOT_COVERED)) == []
    assert clinic.course.insurance is InsuranceStatus.COVERED


def test_a_course_waiting_only_for_the_payer_says_so() -> None:
    clinic = Clinic(insurance=None)
    clinic.record(story.PRESCRIBER, story.assessment())
    for actor, command in story.preparation(clinic.now)[1:]:
        clinic.record(actor, command)  # type: ignore[arg-type]
    assert view(clinic.course, clinic.now).awaiting == ["eligibility"]


def test_check_in_and_dose_hours_before_the_session_are_refused_saying_when_they_open() -> None:
    """Given session 1 at 15:00, check-in at 09:00 is refused (too_early_for_session, naming the
    time and when check-in opens); at 13:00 (two hours before, the default) it is accepted."""
    clinic = Clinic()
    clinic.through_preparation()
    at_three = clinic.now.replace(hour=15, minute=0)
    clinic.record(story.OPERATIONS, story.schedule(1, at_three))
    early = clinic.rejects(story.NURSE, story.check_in(1))
    assert early.code == "too_early_for_session"
    assert "scheduled for 2026-11-25 15:00 UTC" in early.message
    assert "check-in opens 2 hours before, at 2026-11-25 13:00 UTC" in early.message
    clinic.now = at_three - timedelta(hours=2)
    assert clinic.record(story.NURSE, story.check_in(1)) == ["CheckedIn"]


def test_a_dose_is_refused_before_its_window_and_the_step_s_own_rules_speak_first() -> None:
    clinic = Clinic(policy=CoursePolicy(session_opens_before=timedelta(minutes=90)))
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(hours=1)))
    clinic.record(story.NURSE, story.check_in(1))
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(days=1)))  # moved to tomorrow
    dose = clinic.rejects(story.NURSE, story.dose(1))
    assert dose.code == "too_early_for_session" and "a dose can be recorded from 90 minutes before" in dose.message
    assert clinic.rejects(story.NURSE, story.check_in(1)).code == "already_checked_in"  # not "too early"


def test_histories_from_before_the_rule_decide_as_they_did() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(hours=19)))
    events = decide(clinic.course, story.check_in(1), story.NURSE, clinic.now, session_window=False)
    assert [e.type for e in events] == ["CheckedIn"]


@given(st.integers(min_value=-600, max_value=48 * 60), st.integers(min_value=15, max_value=24 * 60))
def test_check_in_is_accepted_exactly_from_the_window_on(minutes_ahead: int, window: int) -> None:
    clinic = Clinic(policy=CoursePolicy(session_opens_before=timedelta(minutes=window)))
    clinic.through_preparation()
    clinic.record(story.OPERATIONS, story.schedule(1, clinic.now + timedelta(days=3)))
    clinic.now += timedelta(days=3) - timedelta(minutes=minutes_ahead)
    try:
        decide(clinic.course, story.check_in(1), story.NURSE, clinic.now)
    except RuleViolation as refused:
        assert refused.code == "too_early_for_session" and minutes_ahead > window
    else:
        assert minutes_ahead <= window
