"""Every state says why: each reason code and each event type reads as a sentence a clinician can act on."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from course.commands import BloodPressure, Contraindication
from course.events import DomainEvent
from course.explain import Facts, event_in_words, reason_in_words, timeline_in_words
from course.policy import BloodPressureThreshold, CoursePolicy
from course.rules import ineligibility_reasons
from course.timing import pending
from tests import story
from tests.clinic import Clinic

READING = BloodPressure(systolic=170, diastolic=105)
POLICY = CoursePolicy()
STRICT = CoursePolicy(bp_threshold=BloodPressureThreshold(systolic=150, diastolic=95))
AT = "2026-11-25T09:00:00+00:00"  # data as stored: the sentence shows it in the zone asked for


@pytest.mark.parametrize(
    ("code", "facts", "words"),
    [
        ("bp_above_threshold", Facts(policy=POLICY, reading=READING), "blood pressure 170/105 is at or above 160/100"),
        ("bp_above_threshold", Facts(policy=STRICT, reading=READING), "blood pressure 170/105 is at or above 150/95"),
        ("bp_above_threshold", Facts(reading=READING), "blood pressure 170/105 is at or above the course's limit"),
        ("bp_above_threshold", Facts(policy=POLICY), "blood pressure at or above 160/100"),
        ("bp_above_threshold", None, "blood pressure at or above the course's limit"),
        ("psychotic_disorder", None, "a psychotic disorder (ketamine can worsen psychosis)"),
        ("uncontrolled_hypertension", None, "uncontrolled hypertension (ketamine raises blood pressure)"),
        ("pregnancy", None, "pregnancy"),
        ("substance_use_disorder", None, "a substance use disorder"),
        ("cardiovascular_disease", None, "cardiovascular disease"),
        ("hepatic_impairment", None, "hepatic impairment"),
        ("assessment_deadline", Facts(policy=POLICY), "no assessment was recorded within 30 days of opening"),
        ("assessment_deadline", None, "no assessment was recorded before the course's deadline"),
        ("preparation_deadline", Facts(policy=POLICY), "preparation was not completed within 60 days of candidacy"),
        ("clinical_review", None, "a prescriber closed the course at a clinical review"),
        ("no_maintenance", None, "the dosing series and integration are done, with no maintenance planned"),
        ("patient_worse", None, "the patient felt worse after the dose"),
        ("severe_dissociation", None, "severe dissociation"),
        ("severe_disorientation", None, "severe disorientation"),
        ("severe_dizziness", None, "severe dizziness"),
        ("severe_nausea", None, "severe nausea"),
        ("severe_elevated_blood_pressure", None, "severely elevated blood pressure"),
        ("severe_other", None, "a severe side effect (other)"),
        ("all_planned_sessions", None, "all planned sessions were given"),
        ("ended_by_review", None, "a prescriber ended dosing at a clinical review"),
        ("integration_session", None, "an integration session after the last dose"),
        ("patient_request", None, "the patient asked to stop"),
        ("patient_travel", None, "the patient is travelling"),
        ("moved", None, "the patient moved away"),
        ("payment_pending", None, "payment is pending"),
        ("bp_recheck", None, "blood pressure to be rechecked"),
        ("self_pay", None, "the patient pays for the course themself"),
        ("manual_verification", None, "coverage must be verified with the payer by phone"),
        ("unrecognised_reason", None, "the payer's answer was not one this service recognises"),
        ("non_covered", None, "the plan does not cover this treatment"),
        ("authorization_required", None, "the payer requires prior authorization"),
        ("aaa_72_invalid_member_id", None, "the payer rejected the request (AAA 72): invalid member id"),
        ("aaa_zz", None, "the payer rejected the request (AAA ZZ)"),
        ("family_emergency", None, "family emergency"),
    ],
)
def test_a_reason_code_reads_as_words(code: str, facts: Facts | None, words: str) -> None:
    assert reason_in_words(code, facts) == words


def test_without_a_policy_a_lapse_names_no_duration() -> None:
    assert reason_in_words("preparation_deadline") == "preparation was not completed before the course's deadline"


def test_every_code_an_ineligible_course_closes_with_is_said_with_its_reading() -> None:
    codes = ineligibility_reasons(list(Contraindication), READING, POLICY.bp_threshold)
    words = [reason_in_words(c, Facts(policy=POLICY, reading=READING)) for c in codes]
    assert words == [
        "a psychotic disorder (ketamine can worsen psychosis)",
        "uncontrolled hypertension (ketamine raises blood pressure)",
        "blood pressure 170/105 is at or above 160/100",
    ]


def test_every_lapse_the_timers_can_close_a_course_with_has_words() -> None:
    clinic = Clinic()
    lapses = {item.purpose for item in pending(clinic.course, clinic.now) if item.kind == "lapse"}
    clinic.through_preparation()
    lapses |= {item.purpose for item in pending(clinic.course, clinic.now) if item.kind == "lapse"}
    assert lapses == {"assessment_deadline"}  # preparation completed: dosing has no lapse
    for code in [*lapses, "preparation_deadline"]:
        assert reason_in_words(code, Facts(policy=POLICY)) != code.replace("_", " ")


VITALS = {"systolic": 124, "diastolic": 80, "heart_rate": 70}
EVENTS: dict[str, tuple[dict[str, object], str]] = {
    "CourseOpened": (
        {"course_id": "3f1e9c2a-0000-4000-8000-000000000000", "patient_id": "pt-0001", "clinician_id": "dr-ames",
         "therapist_id": "th-cole", "condition": "gad", "self_pay": True,
         "policy_ref": {"name": "default", "version": 1, "sha256": "ab"}},
        "Course opened for patient pt-0001: prescriber dr-ames, therapist th-cole; generalised anxiety disorder; "
        "self-pay; policy default version 1",
    ),
    "EligibilityChecked": (
        {"status": "covered", "reason": "active_coverage", "in_network": True,
         "patient_share": {"copay": "20", "coinsurance_rate": "0.2"}},
        "Insurance checked: covered, in network; coverage is active; patient pays: copay 20, coinsurance 20 %",
    ),
    "FinancialClearanceRecorded": (
        {"self_pay": True, "estimated_cost_acknowledged": True},
        "Financial clearance: self-pay, estimated cost acknowledged",
    ),
    "PriorAuthorizationRecorded": ({"reference": "PA-123", "approved": True}, "Prior authorization PA-123: approved"),
    "AssessmentRecorded": (
        {"blood_pressure": {"systolic": 128, "diastolic": 82}, "heart_rate": 72, "contraindications": ["pregnancy"],
         "relative_contraindication_rationale": "Discussed with obstetrics", "condition": "gad", "gad7": 15},
        "Assessment: blood pressure 128/82, heart rate 72; pregnancy; rationale written; "
        "generalised anxiety disorder; GAD-7 15",
    ),
    "CandidacyConfirmed": ({"relative_contraindications": ["pregnancy"]}, "Candidacy confirmed despite pregnancy"),
    "IntentionsRecorded": ({"goals": "Fewer panic episodes at work"}, "Intentions: “Fewer panic episodes at work”"),
    "ConsentRecorded": (
        {"form_version": "2026-01", "signed_at": AT},
        "Consent signed (form 2026-01) at 2026-11-25 10:00 Europe/Berlin",
    ),
    "SupportPersonRecorded": (
        {"name": "Sam", "relationship": "spouse", "phone": "555-0100"},
        "Support person: Sam (spouse), 555-0100",
    ),
    "DosingPlanRecorded": (
        {"route": "iv_infusion", "planned_sessions": 6, "starting_dose_mg_per_kg": 0.5, "max_dose_mg_per_kg": 1.0},
        "Dosing plan: IV infusion, 6 sessions, starting at 0.5 mg/kg, at most 1 mg/kg",
    ),
    "OrientationRecorded": (
        {"topics": ["what_to_expect", "ride_home"]},
        "Orientation given: what to expect, ride home",
    ),
    "PreparationCompleted": ({}, "Preparation complete: dosing sessions can go ahead"),
    "SessionScheduled": (
        {"session_number": 2, "scheduled_at": AT},
        "Session 2 scheduled for 2026-11-25 10:00 Europe/Berlin",
    ),
    "ReminderSent": (
        {"key": "k", "purpose": "session_tomorrow", "recipient": "patient", "due_at": AT, "session_number": 2},
        "Reminder sent to the patient: dosing session 2 tomorrow (arrange a ride home)",
    ),
    "CheckedIn": ({"session_number": 2, "vitals": VITALS}, "Session 2 check-in: 124/80, heart rate 70"),
    "DoseAdministered": (
        {"session_number": 2, "route": "iv_infusion", "dose_mg_per_kg": 0.5, "given_at": AT},
        "Session 2 dose given: IV infusion 0.5 mg/kg at 2026-11-25 10:00 Europe/Berlin; monitoring started",
    ),
    "MonitoringReadingRecorded": (
        {"session_number": 2, "taken_at": AT, "blood_pressure": {"systolic": 150, "diastolic": 92},
         "heart_rate": 80, "spo2": 97, "sedation": {"scale": "moaas", "score": 4}, "dissociation": "present",
         "side_effects": [{"effect": "dizziness", "severity": "mild"}]},
        "Session 2 reading at 2026-11-25 10:00 Europe/Berlin: 150/92; heart rate 80; SpO2 97%; sedation 4/5 "
        "(MOAA/S); dissociation still present; dizziness (mild)",
    ),
    "PatientDischarged": (
        {"session_number": 2, "discharged_at": AT, "collected_by": "Sam", "relationship": "spouse",
         "minutes_observed": 125},
        "Session 2: discharged at 2026-11-25 10:00 Europe/Berlin after 125 minutes, collected by their spouse",
    ),
    "DosingSessionDeferred": (
        {"session_number": 2, "vitals": {"systolic": 170, "diastolic": 104, "heart_rate": 96},
         "reason": "bp_above_threshold"},
        "Session 2 deferred: blood pressure 170/104 is at or above 160/100 (heart rate 96)",
    ),
    "DosingSessionCompleted": (
        {"session_number": 2, "route": "iv_infusion", "dose_mg_per_kg": 0.5,
         "post_vitals": {"systolic": 130, "diastolic": 84, "heart_rate": 76},
         "side_effects": [{"effect": "nausea", "severity": "mild"}], "patient_response": "better", "gad7": 11},
        "Session 2 given: IV infusion 0.5 mg/kg; after the dose 130/84, heart rate 76; nausea (mild); "
        "patient felt better; GAD-7 11",
    ),
    "ClinicalReviewRequired": (
        {"session_number": 2, "reasons": ["patient_worse", "severe_nausea"]},
        "Session 2 needs a prescriber's review before the next dose: the patient felt worse after the dose, "
        "severe nausea",
    ),
    "ClinicalReviewRecorded": (
        {"decision": "adjust_dose", "new_dose_mg_per_kg": 0.4, "rationale": "Nausea at 0.5"},
        "Clinical review: adjust the dose to 0.4 mg/kg; “Nausea at 0.5”",
    ),
    "IntegrationSessionRecorded": (
        {"modality": "act", "held_at": AT, "gad7": 10},
        "Integration session (ACT) held 2026-11-25 10:00 Europe/Berlin; GAD-7 10",
    ),
    "FollowUpOverdue": (
        {"key": "integration-overdue-1", "what": "integration_session", "due_at": AT},
        "Overdue: an integration session after the last dose, due 2026-11-25 10:00 Europe/Berlin",
    ),
    "DosingSeriesCompleted": (
        {"sessions_completed": 6, "reason": "all_planned_sessions"},
        "Dosing series complete after 6 sessions: all planned sessions were given",
    ),
    "MaintenancePlanRecorded": (
        {"kind": "ketamine", "interval_days": 90, "next_due_at": AT},
        "Maintenance plan: ketamine every 90 days, next due 2026-11-25 10:00 Europe/Berlin",
    ),
    "MaintenanceSessionRecorded": (
        {"kind": "therapy_only", "held_at": AT, "gad7": 6, "next_due_at": "2027-02-23T09:00:00+00:00"},
        "Maintenance session (therapy only) held 2026-11-25 10:00 Europe/Berlin; GAD-7 6; "
        "next due 2027-02-23 10:00 Europe/Berlin",
    ),
    "MaintenanceOverdue": (
        {"key": "maintenance-overdue-x", "due_at": AT},
        "Maintenance session overdue: it was due 2026-11-25 10:00 Europe/Berlin",
    ),
    "HoldPlaced": (
        {"reason": "bp_recheck", "clinical": True},
        "Course put on hold by a clinician: blood pressure to be rechecked",
    ),
    "HoldReleased": ({}, "Hold released: the course goes on"),
    "CareTeamReassigned": ({"therapist_id": "th-moss"}, "Care team changed: therapist now th-moss"),
    "CourseClosed": (
        {"outcome": "withdrawn", "reasons": ["patient_request"]},
        "Course closed (withdrawn): the patient asked to stop",
    ),
}  # fmt: skip


def _event_types() -> set[str]:
    (union, *_) = typing.get_args(DomainEvent)
    return {model.model_fields["type"].default for model in typing.get_args(union)}


def test_every_domain_event_type_has_a_sentence() -> None:
    assert set(EVENTS) == _event_types()


@pytest.mark.parametrize("type_", sorted(EVENTS))
def test_an_event_reads_as_one_line_with_its_facts(type_: str) -> None:
    data, words = EVENTS[type_]
    line = event_in_words(type_, data, Facts(policy=POLICY, zone=ZoneInfo("Europe/Berlin")))
    assert line == words
    assert type_ not in line and "\n" not in line  # its own sentence, never the class name


@pytest.mark.parametrize(
    ("type_", "data", "words"),
    [
        ("EligibilityChecked", {"status": "not_covered", "reason": "self_pay"},
         "Insurance checked: not covered; the patient pays for the course themself"),
        ("FinancialClearanceRecorded", {"self_pay": False, "estimated_cost_acknowledged": True},
         "Financial clearance: insurance, estimated cost acknowledged"),
        ("PriorAuthorizationRecorded", {"reference": "PA-9", "approved": False},
         "Prior authorization PA-9: not approved"),
        ("CandidacyConfirmed", {}, "Candidacy confirmed"),
        ("ClinicalReviewRecorded", {"decision": "change_route", "new_route": "intranasal", "rationale": "Veins"},
         "Clinical review: change the route to intranasal; “Veins”"),
        ("ClinicalReviewRecorded", {"decision": "continue", "rationale": "x " * 100},
         "Clinical review: continue as planned; “" + "x " * 59 + "x…”"),
        ("IntegrationSessionRecorded", {"modality": "cbt", "held_at": AT},
         "Integration session (CBT) held 2026-11-25 09:00 UTC"),
        ("MaintenancePlanRecorded", {"kind": "none", "interval_days": None, "next_due_at": None},
         "Maintenance plan: no maintenance"),
        ("DosingSeriesCompleted", {"sessions_completed": 1, "reason": "ended_by_review"},
         "Dosing series complete after 1 session: a prescriber ended dosing at a clinical review"),
        ("HoldPlaced", {"reason": "patient_travel"}, "Course put on hold: the patient is travelling"),
        ("ReminderSent", {"key": "k", "purpose": "clearance_pending", "recipient": "operations", "due_at": AT},
         "Reminder sent to operations: financial clearance or prior authorization is pending"),
        ("CourseClosed", {"outcome": "closed_by_clinician", "reasons": ["clinical_review"]},
         "Course closed (closed by clinician): a prescriber closed the course at a clinical review"),
        ("CourseClosed", {"outcome": "lapsed", "reasons": ["assessment_deadline"]},
         "Course closed (lapsed): no assessment was recorded before the course's deadline"),
        ("DosingSessionDeferred",
         {"session_number": 1, "vitals": {"systolic": 170, "diastolic": 104, "heart_rate": 96},
          "reason": "bp_above_threshold"},
         "Session 1 deferred: blood pressure 170/104 is at or above the course's limit (heart rate 96)"),
    ],
)  # fmt: skip
def test_other_facts_of_an_event_read_as_words(type_: str, data: dict[str, object], words: str) -> None:
    assert event_in_words(type_, data) == words


def test_an_event_type_from_a_newer_worker_reads_as_its_name_in_words() -> None:
    assert event_in_words("MedicationReconciled", {"x": 1}) == "Medication reconciled"
    assert event_in_words("CheckedIn", {"session_number": "not a number"}) == "Checked in"


def test_a_timeline_names_the_limit_and_the_assessments_reading_when_a_course_closes_ineligible() -> None:
    clinic = Clinic(policy=STRICT)
    clinic.record(story.PRESCRIBER, story.assessment(blood_pressure={"systolic": 152, "diastolic": 90}))
    rows = [{"type": e.type, "data": e.data()} for e in clinic.log]
    lines = timeline_in_words(rows, UTC)
    assert lines[-1] == "Course closed (ineligible): blood pressure 152/90 is at or above 150/95"
    assert lines[-2].startswith("Assessment: blood pressure 152/90, heart rate 72; no contraindications;")


def test_times_are_shown_in_the_zone_asked_for_with_its_name() -> None:
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    line = event_in_words("SessionScheduled", {"session_number": 1, "scheduled_at": at.isoformat()},
                          Facts(zone=ZoneInfo("America/New_York")))  # fmt: skip
    assert (
        line == f"Session 1 scheduled for {at.astimezone(ZoneInfo('America/New_York')):%Y-%m-%d %H:%M} America/New_York"
    )
