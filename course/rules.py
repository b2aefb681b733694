"""Clinical rules as small pure functions, each with its reason."""

from __future__ import annotations

from datetime import datetime

from course.commands import (
    BloodPressure,
    Contraindication,
    InsuranceStatus,
    Modality,
    PatientResponse,
    RecordDosingSession,
    Role,
    Severity,
)
from course.events import DosingSessionCompleted
from course.policy import BloodPressureThreshold
from course.state import CourseState

# Ketamine raises blood pressure and can worsen psychosis: these exclude a patient outright.
ABSOLUTE_CONTRAINDICATIONS = frozenset(
    {Contraindication.PSYCHOTIC_DISORDER, Contraindication.UNCONTROLLED_HYPERTENSION}
)
RELATIVE_CONTRAINDICATIONS = frozenset(Contraindication) - ABSOLUTE_CONTRAINDICATIONS

# Everyone who works on courses. A clinic admin publishes policies and nothing else: no step, not
# even a lifecycle one, is theirs to record.
ALL_ROLES = frozenset(Role) - {Role.CLINIC_ADMIN}
CLINICAL_ROLES = frozenset({Role.PRESCRIBER, Role.NURSE, Role.THERAPIST})

# Who may record which step. Prescribers own candidacy, the dosing plan and clinical reviews;
# operations staff handle scheduling, money and the course's lifecycle, never clinical findings.
STEP_ROLES: dict[str, frozenset[Role]] = {
    "assessment": frozenset({Role.PRESCRIBER}),
    "financial-clearance": ALL_ROLES,
    "prior-authorization": ALL_ROLES,
    "intentions": CLINICAL_ROLES,
    "consent": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "support-person": ALL_ROLES,
    "dosing-plan": frozenset({Role.PRESCRIBER}),
    "orientation": CLINICAL_ROLES,
    "schedule-session": ALL_ROLES,
    "check-in": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "dosing-session": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "dose-administered": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "monitoring-reading": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "discharge": frozenset({Role.PRESCRIBER, Role.NURSE}),
    "clinical-review": frozenset({Role.PRESCRIBER}),
    "integration-session": frozenset({Role.THERAPIST, Role.PRESCRIBER}),
    "maintenance-plan": frozenset({Role.PRESCRIBER, Role.THERAPIST}),
    "maintenance-session": CLINICAL_ROLES,
    "hold": ALL_ROLES,
    "release": ALL_ROLES,
    "withdraw": ALL_ROLES,
    "reassign": ALL_ROLES,
}


def role_refusal(role: Role, step: str) -> str | None:
    """Why this role may not record this step, or None when it may (the decider and the API share it)."""
    allowed = STEP_ROLES[step]
    if role in allowed:
        return None
    return (
        f"Staff with the role {role.value} cannot record '{step}'; this step needs: "
        f"{', '.join(sorted(r.value for r in allowed))}."
    )


def clinical_hold_refusal(state: CourseState, role: Role) -> str | None:
    """Why this role may not release the course's hold, or None when it may.

    A clinician holds a course for the patient's safety (a reading, a new medication, a crisis):
    only someone who may place such a hold judges that it is over. A hold operations placed (travel,
    payment) is released by anyone who may release holds.
    """
    if not state.hold_clinical or role in CLINICAL_ROLES:
        return None
    clinicians = sorted(r.value for r in CLINICAL_ROLES & STEP_ROLES["hold"])
    return (
        f"A clinician placed this hold for the patient's care; only a clinician ({', '.join(clinicians)}) "
        "can release it."
    )


PREPARATION_STEPS = ("intentions", "consent", "support-person", "dosing-plan", "orientation")


def at_or_above(reading: BloodPressure, threshold: BloodPressureThreshold) -> bool:
    """Either number at or over its limit counts: isolated diastolic hypertension is still unsafe."""
    return reading.systolic >= threshold.systolic or reading.diastolic >= threshold.diastolic


def ineligibility_reasons(
    contraindications: list[Contraindication], reading: BloodPressure, threshold: BloodPressureThreshold
) -> list[str]:
    reasons = sorted(c.value for c in set(contraindications) & ABSOLUTE_CONTRAINDICATIONS)
    if at_or_above(reading, threshold):
        reasons.append("bp_above_threshold")
    return reasons


def integration_already_recorded(state: CourseState, modality: Modality, held_at: datetime) -> bool:
    """One therapist cannot hold two sessions of one modality at the same moment: the same
    modality at the same instant (whatever offset it was written in) is the same session sent again."""
    return (modality, held_at) in state.integration_sessions_held


def maintenance_already_recorded(state: CourseState, held_at: datetime) -> bool:
    """A patient has one maintenance session at a time: the same instant is the same session."""
    return held_at in state.maintenance_sessions_held


def review_reasons(session: RecordDosingSession | DosingSessionCompleted) -> list[str]:
    """A worse patient or a severe side effect means a prescriber looks before the next dose."""
    reasons = []
    if session.patient_response is PatientResponse.WORSE:
        reasons.append("patient_worse")
    reasons.extend(
        f"severe_{effect.effect.value}" for effect in session.side_effects if effect.severity is Severity.SEVERE
    )
    return reasons


def missing_preparation(state: CourseState) -> list[str]:
    done = {
        "intentions": state.intentions,
        "consent": state.consent_version == state.policy.consent_form_version,
        "support-person": state.support_person,
        "dosing-plan": state.plan is not None,
        "orientation": state.orientation,
    }
    return [step for step in PREPARATION_STEPS if not done[step]]


def missing_clearance(state: CourseState) -> str | None:
    """The financial step still needed before a first dose, or None once money is settled.

    Ketamine for anxiety is often not covered: a patient must know what they will pay before
    the first dose, and a payer that demands authorization must have approved it.
    """
    if state.financial_clearance:
        return None
    match state.insurance:
        case InsuranceStatus.COVERED:
            return None
        case InsuranceStatus.PRIOR_AUTH_REQUIRED:
            return None if state.prior_authorization_approved else "prior-authorization"
        case None:
            return "eligibility"
        case _:
            return "financial-clearance"


def missing_before_first_dose(state: CourseState) -> list[str]:
    missing = [] if state.candidacy_confirmed else ["assessment"]
    missing += missing_preparation(state)
    clearance = missing_clearance(state)
    if clearance is not None:
        missing.append(clearance)
    return missing
