"""Why a course is where it is: reason codes as words, and the words for the course's codes.

The course stores codes (`bp_above_threshold`, `patient_worse`) and typed facts; these sentences
are for the care team's own screens (the console's course page, `course status`, `course events`).
They name readings, so never a log line, a search attribute, a memo or the operations view, which
keep the codes. Pure: no I/O, no clock; times are shown in the zone the caller passes.
course/explain.py says each event in words with these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from course.commands import (
    BloodPressure,
    Condition,
    Contraindication,
    InsuranceStatus,
    MaintenanceKind,
    Modality,
    PatientResponse,
    ReviewDecision,
    Route,
    SideEffect,
    SideEffectKind,
    Vitals,
)
from course.policy import CoursePolicy


@dataclass(frozen=True)
class Facts:
    """What a sentence may need beyond its own code or event: the course's policy (its limits),
    the assessment's blood pressure (why an ineligible course closed), the zone times are shown in."""

    policy: CoursePolicy | None = None
    reading: BloodPressure | None = None
    zone: tzinfo = UTC


# Ketamine raises blood pressure and can worsen psychosis: the two absolute contraindications.
CONTRAINDICATIONS: Mapping[str, str] = {
    Contraindication.PSYCHOTIC_DISORDER: "a psychotic disorder (ketamine can worsen psychosis)",
    Contraindication.UNCONTROLLED_HYPERTENSION: "uncontrolled hypertension (ketamine raises blood pressure)",
    Contraindication.PREGNANCY: "pregnancy",
    Contraindication.SUBSTANCE_USE_DISORDER: "a substance use disorder",
    Contraindication.CARDIOVASCULAR_DISEASE: "cardiovascular disease",
    Contraindication.HEPATIC_IMPAIRMENT: "hepatic impairment",
}
SIDE_EFFECTS: Mapping[str, str] = {
    SideEffectKind.DISSOCIATION: "dissociation",
    SideEffectKind.DISORIENTATION: "disorientation",
    SideEffectKind.DIZZINESS: "dizziness",
    SideEffectKind.NAUSEA: "nausea",
    SideEffectKind.ELEVATED_BLOOD_PRESSURE: "elevated blood pressure",
    SideEffectKind.OTHER: "another side effect",
}
ROUTES: Mapping[str, str] = {
    Route.IV_INFUSION: "IV infusion",
    Route.IM_INJECTION: "IM injection",
    Route.INTRANASAL: "intranasal",
    Route.ORAL_LOZENGE: "oral lozenge",
}
CONDITIONS: Mapping[str, str] = {
    Condition.GAD: "generalised anxiety disorder",
    Condition.PANIC: "panic disorder",
    Condition.SOCIAL_ANXIETY: "social anxiety disorder",
    Condition.PHOBIA: "phobia",
    Condition.OTHER: "another anxiety condition",
}
MODALITIES: Mapping[str, str] = {
    Modality.CBT: "CBT",
    Modality.MINDFULNESS: "mindfulness",
    Modality.PSYCHODYNAMIC: "psychodynamic",
    Modality.ACT: "ACT",
    Modality.IFS: "IFS",
    Modality.SOMATIC: "somatic",
}
RESPONSES: Mapping[str, str] = {
    PatientResponse.BETTER: "patient felt better",
    PatientResponse.SAME: "patient felt the same",
    PatientResponse.WORSE: "patient felt worse",
}
INSURANCE: Mapping[str, str] = {
    InsuranceStatus.COVERED: "covered",
    InsuranceStatus.NOT_COVERED: "not covered",
    InsuranceStatus.PRIOR_AUTH_REQUIRED: "covered with prior authorization",
    InsuranceStatus.UNKNOWN: "unknown",
}
MAINTENANCE: Mapping[str, str] = {
    MaintenanceKind.NONE: "no maintenance",
    MaintenanceKind.KETAMINE: "ketamine",
    MaintenanceKind.THERAPY_ONLY: "therapy only",
}
DECISIONS: Mapping[str, str] = {
    ReviewDecision.CONTINUE: "continue as planned",
    ReviewDecision.ADJUST_DOSE: "adjust the dose",
    ReviewDecision.CHANGE_ROUTE: "change the route",
    ReviewDecision.END_DOSING: "end dosing",
    ReviewDecision.CLOSE_COURSE: "close the course",
}
RECIPIENTS: Mapping[str, str] = {
    "patient": "the patient",
    "clinician": "the prescriber",
    "therapist": "the therapist",
    "operations": "operations",
}
# What each reminder is about (course/timing.py's purposes).
REMINDERS: Mapping[str, str] = {
    "assessment_pending": "the assessment is not yet recorded",
    "preparation_stalled": "preparation is not complete",
    "session_tomorrow": "a dosing session tomorrow (arrange a ride home)",
    "integration_due": "an integration session is due after the last dose",
    "integration_gap": "no integration session recently",
    "maintenance_due": "time to book the maintenance session",
    "maintenance_overdue": "the maintenance session is overdue",
    "clearance_pending": "financial clearance or prior authorization is pending",
}
# Codes with a fixed sentence: how a course ended, why a review is needed, what the payer said,
# and the withdrawal and hold reasons staff use most (any other code reads as its words).
REASONS: Mapping[str, str] = {
    "clinical_review": "a prescriber closed the course at a clinical review",
    "no_maintenance": "the dosing series and integration are done, with no maintenance planned",
    "patient_worse": "the patient felt worse after the dose",
    "all_planned_sessions": "all planned sessions were given",
    "ended_by_review": "a prescriber ended dosing at a clinical review",
    "integration_session": "an integration session after the last dose",
    "patient_request": "the patient asked to stop",
    "patient_travel": "the patient is travelling",
    "travel": "travel",
    "moved": "the patient moved away",
    "payment_pending": "payment is pending",
    "bp_recheck": "blood pressure to be rechecked",
    "self_pay": "the patient pays for the course themself",
    "manual_verification": "coverage must be verified with the payer by phone",
    "unrecognised_reason": "the payer's answer was not one this service recognises",
    "active_coverage": "coverage is active",
    "inactive_coverage": "coverage is not active",
    "non_covered": "the plan does not cover this treatment",
    "benefits_carved_out": "mental-health benefits are with another plan (carved out)",
    "authorization_required": "the payer requires prior authorization",
    "no_coverage_information": "the payer gave no coverage information for this service",
    "payer_cannot_process": "the payer could not process the request",
}
_PAYER_REJECTION = re.compile(r"^aaa_([a-z0-9]+)(?:_(.+))?$")


def reason_in_words(code: str, facts: Facts | None = None) -> str:
    """A close, defer, review, hold, withdrawal or payer reason code as words; an unknown code
    reads as itself with spaces ("family_emergency" -> "family emergency")."""
    facts = facts or Facts()
    policy = facts.policy
    if code == "bp_above_threshold":
        return _blood_pressure(facts.reading, facts)
    if code in CONTRAINDICATIONS:
        return CONTRAINDICATIONS[code]
    if code == "assessment_deadline":
        within = f"within {spoken(policy.assessment_deadline)} of opening" if policy else "before the course's deadline"
        return f"no assessment was recorded {within}"
    if code == "preparation_deadline":
        within = (
            f"within {spoken(policy.preparation_deadline)} of candidacy" if policy else "before the course's deadline"
        )
        return f"preparation was not completed {within}"
    if code.startswith("severe_") and code.removeprefix("severe_") in SIDE_EFFECTS:
        effect = code.removeprefix("severe_")
        if effect == SideEffectKind.ELEVATED_BLOOD_PRESSURE:
            return "severely elevated blood pressure"
        return "a severe side effect (other)" if effect == SideEffectKind.OTHER else f"severe {SIDE_EFFECTS[effect]}"
    if code in REASONS:
        return REASONS[code]
    rejected = _PAYER_REJECTION.match(code)
    if rejected:
        what = f": {rejected[2].replace('_', ' ')}" if rejected[2] else ""
        return f"the payer rejected the request (AAA {rejected[1].upper()}){what}"
    return code.replace("_", " ")


def reasons_in_words(codes: Iterable[str], facts: Facts | None = None) -> list[str]:
    return [reason_in_words(code, facts) for code in codes]


def _blood_pressure(reading: BloodPressure | None, facts: Facts) -> str:
    limit = facts.policy.bp_threshold if facts.policy else None
    above = f"{limit.systolic}/{limit.diastolic}" if limit else "the course's limit"
    if reading is None:
        return f"blood pressure at or above {above}"
    return f"blood pressure {reading.systolic}/{reading.diastolic} is at or above {above}"


def spoken(span: timedelta) -> str:
    """A policy's duration as a clinician says it: "30 days", "24 hours", "90 minutes"."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    return f"{seconds} seconds"


def at_time(moment: datetime | str, zone: tzinfo = UTC) -> str:
    """`2026-11-25 10:00 Europe/Berlin`: the time with the zone it is shown in."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M} {zone_name(zone)}"


def zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone.tzname(None) or "UTC")


def vitals_in_words(vitals: Vitals) -> str:
    return f"{vitals.systolic}/{vitals.diastolic}, heart rate {vitals.heart_rate}"


def side_effects_in_words(effects: list[SideEffect]) -> str:
    if not effects:
        return "no side effects"
    return ", ".join(f"{SIDE_EFFECTS[e.effect]} ({e.severity.value})" for e in effects)


def dose_in_words(route: Route, dose_mg_per_kg: float) -> str:
    return f"{ROUTES[route]} {dose_mg_per_kg:g} mg/kg"
